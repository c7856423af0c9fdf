import test from 'ava';
import { routerMismatch } from '../daemon/router/router-match.js';
import { PROTOCOL_VERSION, type RouterIdentity } from '../daemon/router/router-protocol.js';
import { lastLogMessage, ROUTER_PROCESS_SCRIPT } from '../daemon/router/router-spawner.js';

// Which router found running at start rackd keeps, hands off from, or replaces.

const ours: RouterIdentity = { pid: 1, httpPort: 8080, httpsPort: 0, bind: '0.0.0.0', protocol: PROTOCOL_VERSION, startedAt: '', version: '1.2.3', script: ROUTER_PROCESS_SCRIPT };
const wanted = { port: 8080, bind: '0.0.0.0' };

test('a router of this rack on the wanted sockets is kept; port 0 takes any port', (t) => {
  t.is(routerMismatch(ours, wanted, '1.2.3'), 'none');
  t.is(routerMismatch({ ...ours, httpPort: 41234 }, { ...wanted, port: 0 }, '1.2.3'), 'none');
  t.is(routerMismatch({ ...ours, httpsPort: 8443 }, { ...wanted, https: { port: 0, certDir: '/c' } }, '1.2.3'), 'none');
});

test('another script, version or newer protocol on the wanted sockets hands off to ours', (t) => {
  t.is(routerMismatch({ ...ours, script: '/opt/other/router-process.js' }, wanted, '1.2.3'), 'code');
  t.is(routerMismatch(ours, wanted, '1.2.4'), 'code');
  t.is(routerMismatch({ ...ours, protocol: PROTOCOL_VERSION - 1 }, wanted, '1.2.3'), 'code');
});

test('another port, bind or TLS listener, or a router too old to hand off, is replaced', (t) => {
  t.is(routerMismatch({ ...ours, httpPort: 9090 }, wanted, '1.2.3'), 'sockets');
  t.is(routerMismatch({ ...ours, bind: '127.0.0.1' }, wanted, '1.2.3'), 'sockets');
  t.is(routerMismatch({ ...ours, httpsPort: 8443 }, wanted, '1.2.3'), 'sockets', 'TLS listener not wanted');
  t.is(routerMismatch(ours, { ...wanted, https: { port: 0, certDir: '/c' } }, '1.2.3'), 'sockets', 'no TLS listener');
  t.is(routerMismatch({ ...ours, httpsPort: 8443 }, { ...wanted, https: { port: 9443, certDir: '/c' } }, '1.2.3'), 'sockets');
  t.is(routerMismatch({ ...ours, protocol: 2 }, wanted, '1.2.3'), 'sockets');
});

test('a router that would not start is explained by its last log line', (t) => {
  t.is(lastLogMessage('{"msg":"started"}\n{"msg":"router: cannot load its table","err":{"message":"bad JSON"}}\n'), 'router: cannot load its table: bad JSON');
  t.is(lastLogMessage('node: bad option\n'), 'node: bad option');
  t.is(lastLogMessage(''), '');
});
