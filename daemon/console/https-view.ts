import type { AppHttps, CertRecord } from '../store/records.js';
import { html, type SafeHtml } from './html-template.js';
import { appPath, when } from './layout-view.js';

/** A row of `certs -a APP --json`. */
export interface HostCert {
  host: string;
  app: string;
  source: CertRecord['source'] | 'none';
  auto: boolean;
  certificate: { notAfter: string; issuer?: string } | null;
  status: string;
  acme: { failures: number; lastError?: string; lastAttemptAt?: string; nextAttemptAt?: string } | null;
}

export interface HttpsView {
  app: string;
  hosts: HostCert[];
  https: AppHttps;
  /** The app's default host: a CNAME to it reaches this rack. */
  defaultHost: string;
  /** The address rack's router listens on, when it is one address (not every interface). */
  address?: string;
  canChange: boolean;
}

const SOURCE: Record<HostCert['source'], string> = { manual: 'uploaded', acme: 'auto (ACME)', none: 'none' };

/** The switches `certs:auto`, `certs:redirect` and `certs:hsts`, each showing its state and offering the other. */
const SWITCHES: { name: 'auto' | 'redirect' | 'hsts'; label: string; help: string }[] = [
  { name: 'auto', label: 'Automatic certificates (ACME)', help: 'orders and renews a certificate for every host of the app' },
  { name: 'redirect', label: 'Redirect HTTP to HTTPS', help: 'a 308 to https on hosts that have a certificate' },
  { name: 'hsts', label: 'HSTS', help: 'Strict-Transport-Security for a year on HTTPS answers' },
];

/** The Domains tab's HTTPS part: each host's certificate, the switches, and what to point DNS at. */
export function httpsPanel(v: HttpsView): SafeHtml {
  return html`<section id="https" aria-labelledby="https-title" hx-get="${appPath(v.app, '/domains/https')}" hx-trigger="rack-domains from:body" hx-swap="outerHTML">
<h2 id="https-title">HTTPS</h2>
<div class="table-wrap" tabindex="0" role="region" aria-label="Certificates"><table class="certs">
<thead><tr><th scope="col">Host</th><th scope="col">Certificate</th><th scope="col">Expires</th><th scope="col">State</th></tr></thead>
<tbody>${v.hosts.map(
    (h) => html`<tr data-host="${h.host}"><td><code>${h.host}</code></td><td class="cert-source">${SOURCE[h.source]}</td><td>${h.certificate ? html`<time datetime="${h.certificate.notAfter}">${when(h.certificate.notAfter)}</time>` : '-'}</td><td class="cert-status${h.acme?.lastError && h.acme.failures > 0 ? ' error' : ''}">${h.status}</td></tr>`,
  )}</tbody>
</table></div>
<ul class="plain switches">${SWITCHES.map((s) => {
    const on = v.https[s.name] === true;
    return html`<li data-switch="${s.name}"><strong>${s.label}</strong>: <span class="switch-state">${on ? 'on' : 'off'}</span> <span class="note">(${s.help})</span>${v.canChange
      ? html` <button type="button" hx-post="${appPath(v.app, `/domains/https/${s.name}`)}" hx-vals="${JSON.stringify({ on: on ? 'off' : 'on' })}" hx-target="#action" hx-swap="innerHTML">Turn ${on ? 'off' : 'on'}</button>`
      : ''}</li>`;
  })}</ul>
<h3>DNS</h3>
<p>Point each domain at this rack with a <code>CNAME</code> record to <code class="dns-target">${v.defaultHost}</code>${v.address ? html`, or an <code>A</code>/<code>AAAA</code> record to <code>${v.address}</code>` : ''}. Automatic certificates are ordered once the name resolves here (the CA asks over plain HTTP, port 80).</p>
</section>`;
}
