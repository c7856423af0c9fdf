// The console's only script besides htmx: the page's one event stream (server-sent events), live
// lines of actions and logs (always inserted as text), and the log tab's filter and pause.
'use strict';
(function () {
  var body = document.body;
  var url = body.getAttribute('data-events');
  var banner = document.getElementById('connection');
  var pending = {}; // action id -> [{text} | {done}] that arrived before its box
  // The stream starts after the event the page was rendered at, so what happened before it opened
  // (an action started at once) is replayed to it.
  var lastId = body.getAttribute('data-events-from');
  var source = null;
  var retryTimer = null;
  var paused = false;

  function lineBox(action) {
    return document.querySelector('[data-lines="' + action + '"]');
  }

  function apply(action, item) {
    var box = lineBox(action);
    if (!box) {
      (pending[action] = pending[action] || []).push(item);
      return;
    }
    if (item.done) {
      var out = document.querySelector('[data-outcome="' + action + '"]');
      if (out) {
        out.textContent = item.message;
        out.className = 'outcome ' + (item.ok ? 'ok' : 'failed');
      }
      var action = box.closest('.action');
      action.setAttribute('data-state', item.ok ? 'ok' : 'failed');
      var title = action.querySelector('.action-title');
      var ended = title && title.getAttribute(item.ok ? 'data-ok' : 'data-failed');
      if (ended) title.textContent = ended;
    } else {
      box.appendChild(document.createTextNode(item.text + '\n'));
    }
  }

  function flush() {
    Object.keys(pending).forEach(function (action) {
      if (!lineBox(action)) return;
      var items = pending[action];
      delete pending[action];
      items.forEach(function (item) { apply(action, item); });
    });
  }
  document.addEventListener('htmx:afterSettle', flush);

  // A part that polls (the Rack page's, across a switch of rackd) keeps what it shows when rackd
  // does not answer for a moment (the router's 502) instead of being replaced by the error.
  document.addEventListener('htmx:beforeSwap', function (e) {
    var target = e.detail.target;
    if (e.detail.xhr.status >= 500 && target && target.hasAttribute('data-poll')) e.detail.shouldSwap = false;
  });
  // Open <details data-keep> stay open when their part is fetched again.
  var openKept = [];
  document.addEventListener('htmx:beforeSwap', function (e) {
    var target = e.detail.target;
    openKept = target ? Array.prototype.map.call(target.querySelectorAll('details[data-keep][open]'), function (d) {
      return d.getAttribute('data-keep');
    }) : [];
  });
  document.addEventListener('htmx:afterSettle', function () {
    openKept.forEach(function (key) {
      var d = document.querySelector('details[data-keep="' + key + '"]');
      if (d) d.open = true;
    });
    openKept = [];
  });

  // What was typed into a part's form and not yet sent stays when the part is fetched again (a
  // change made elsewhere refreshes it under the user's hands): the field itself, with what it holds,
  // its caret and its focus, takes the place of its new copy, and takes the server's value only
  // where nothing was typed.
  var editable = 'input[name]:not([type=hidden]):not([type=checkbox]):not([type=radio]):not([type=submit]), textarea[name]';
  function formOf(el) {
    return el.form || el.closest('form');
  }
  function fieldKey(el) {
    // The form's address, the field's name and which of the fields so named (Environment's new rows).
    var form = formOf(el);
    if (!form) return ' ' + el.name;
    var same = Array.prototype.filter.call(form.querySelectorAll(editable), function (f) { return f.name === el.name; });
    return (form.getAttribute('hx-post') || form.getAttribute('action') || '') + ' ' + el.name + ' ' + same.indexOf(el);
  }
  var kept = []; // {key, el, focused}: fields of parts about to be swapped
  document.addEventListener('htmx:beforeSwap', function (e) {
    var target = e.detail.target;
    if (!target || !e.detail.shouldSwap) return;
    var active = document.activeElement;
    Array.prototype.forEach.call(target.querySelectorAll(editable), function (el) {
      if (el.value !== el.defaultValue || el === active) kept.push({ key: fieldKey(el), el: el, focused: el === active });
    });
  });
  // As the part is swapped in, not once it settles: nothing shows the server's copy in between.
  document.addEventListener('htmx:afterSwap', function () {
    // Only fields whose part has been swapped by now: another part's swap may be on its way.
    var swapped = kept.filter(function (k) { return !document.contains(k.el); });
    kept = kept.filter(function (k) { return document.contains(k.el); });
    if (!swapped.length) return;
    var fresh = {};
    Array.prototype.forEach.call(document.querySelectorAll(editable), function (f) { fresh[fieldKey(f)] = fresh[fieldKey(f)] || f; });
    swapped.forEach(function (k) {
      var copy = fresh[k.key];
      if (!copy) return;
      var was = k.el.defaultValue;
      var untouched = k.el.value === was;
      k.el.defaultValue = copy.defaultValue;
      // Where nothing was typed the server's value shows (set only when it differs: setting it
      // moves the caret).
      if (untouched && k.el.value !== copy.defaultValue) k.el.value = copy.defaultValue;
      copy.replaceWith(k.el);
      if (k.focused) k.el.focus();
    });
  });
  // A form sent: what it held is no longer "typed", so the refreshed part shows what the server has.
  document.addEventListener('htmx:beforeRequest', function (e) {
    var form = e.detail.elt && formOf(e.detail.elt);
    if (!form || e.detail.requestConfig.verb === 'get') return;
    Array.prototype.forEach.call(form.querySelectorAll(editable), function (el) { el.defaultValue = el.value; });
  });
  // A change whose request never reached rack (the connection dropped) says so where its answer
  // would have gone, instead of leaving the page as if nothing had been asked.
  document.addEventListener('htmx:sendError', function (e) {
    var target = e.detail.target;
    if (!target || e.detail.requestConfig.verb === 'get') return;
    var p = document.createElement('p');
    p.className = 'error';
    p.setAttribute('role', 'alert');
    p.textContent = 'rack could not be reached, so this may not have been done. Try again.';
    target.replaceChildren(p);
  });

  // A field refused by its pattern says what is allowed (its title), not only "match the format".
  document.addEventListener('invalid', function (e) {
    var el = e.target;
    if (el.validity && el.validity.patternMismatch && el.title) el.setCustomValidity(el.title);
  }, true);
  document.addEventListener('input', function (e) {
    if (e.target.setCustomValidity) e.target.setCustomValidity('');
  }, true);

  // "3 min ago" stays true while the page is open (the exact time is the title).
  function relative(iso) {
    var ms = Date.parse(iso) - Date.now();
    if (isNaN(ms)) return null;
    var s = Math.round(Math.abs(ms) / 1000);
    function say(n, unit) { return ms > 0 ? 'in ' + n + ' ' + unit : n + ' ' + unit + ' ago'; }
    if (s < 45) return ms > 0 ? 'in a moment' : 'just now';
    if (s < 3600) return say(Math.max(1, Math.round(s / 60)), 'min');
    if (s < 86400) { var h = Math.round(s / 3600); return say(h, h === 1 ? 'hour' : 'hours'); }
    if (s < 86400 * 60) { var d = Math.round(s / 86400); return say(d, d === 1 ? 'day' : 'days'); }
    return null;
  }
  setInterval(function () {
    Array.prototype.forEach.call(document.querySelectorAll('time[datetime][title]'), function (t) {
      var words = relative(t.getAttribute('datetime'));
      if (words) t.textContent = words;
    });
  }, 30000);

  // Copy buttons (a new token): the text of the element named by data-copy.
  document.addEventListener('click', function (e) {
    var button = e.target.closest && e.target.closest('button[data-copy]');
    if (!button) return;
    var source = document.getElementById(button.getAttribute('data-copy'));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent).then(function () {
      button.textContent = 'Copied';
    }, function () {
      button.textContent = 'Select and copy it';
    });
  });

  function changed(what) {
    if (window.htmx) window.htmx.trigger(body, 'rack-' + what);
  }

  var logLines = document.getElementById('log-lines');
  var logType = document.getElementById('log-type');
  var logPause = document.getElementById('log-pause');
  function logShown(el) {
    var t = logType ? logType.value : '';
    el.hidden = t !== '' && el.getAttribute('data-type') !== t;
  }
  if (logType) logType.addEventListener('change', function () {
    Array.prototype.forEach.call(logLines.children, logShown);
  });
  if (logPause) logPause.addEventListener('click', function () {
    paused = !paused;
    logPause.textContent = paused ? 'Resume' : 'Pause';
    logPause.setAttribute('aria-pressed', String(paused));
  });
  function addLog(line) {
    // A search that ends at a time shows that range only: lines from now on are past it.
    if (!logLines || paused || logLines.hasAttribute('data-until')) return;
    var grep = logLines.getAttribute('data-grep');
    if (grep && line.text.indexOf(grep) === -1) return;
    var span = document.createElement('span');
    span.setAttribute('data-type', line.type);
    span.textContent = line.time + ' ' + line.source + ': ' + line.text + '\n';
    logShown(span);
    logLines.appendChild(span);
    while (logLines.children.length > 2000) logLines.removeChild(logLines.firstChild);
    logLines.scrollTop = logLines.scrollHeight;
  }

  // A push in progress on the Releases tab: its lines as the pusher sees them (always as text).
  function deployBox(push) {
    var area = document.getElementById('live-deploys');
    var card = area && area.querySelector('[data-push="' + push + '"]');
    if (!area) return { card: document.createElement('div'), title: document.createElement('p'), lines: document.createElement('pre') };
    if (!card) {
      card = document.createElement('div');
      card.className = 'action live-deploy';
      card.setAttribute('data-push', push);
      var title = document.createElement('p');
      title.className = 'action-title';
      title.textContent = 'Push in progress';
      var lines = document.createElement('pre');
      lines.className = 'live';
      card.appendChild(title);
      card.appendChild(lines);
      area.insertBefore(card, area.firstChild);
    }
    return { card: card, title: card.querySelector('.action-title'), lines: card.querySelector('pre') };
  }

  function connect() {
    var target = url + (lastId ? (url.indexOf('?') === -1 ? '?' : '&') + 'last=' + encodeURIComponent(lastId) : '');
    source = new EventSource(target);
    function on(type, fn) {
      source.addEventListener(type, function (e) {
        if (e.lastEventId) lastId = e.lastEventId;
        fn(e.data ? JSON.parse(e.data) : {});
      });
    }
    source.addEventListener('open', function () {
      banner.hidden = true;
      body.removeAttribute('data-reconnecting');
      body.setAttribute('data-live', 'true');
    });
    on('hello', function () {});
    on('line', function (e) { apply(e.action, { text: e.text }); });
    on('done', function (e) { apply(e.action, { done: true, ok: e.ok, message: e.message }); });
    on('changed', function (e) { changed(e.what); });
    on('log', function (e) { addLog(e.line); });
    on('deploy-line', function (e) { deployBox(e.push).lines.appendChild(document.createTextNode(e.text + '\n')); });
    on('deploy-done', function (e) {
      var box = deployBox(e.push);
      box.title.textContent = e.ok ? 'Push deployed' : 'Push failed';
      box.card.setAttribute('data-state', e.ok ? 'ok' : 'failed');
    });
    on('signed-out', function (e) {
      source.close();
      window.location.assign('/console/sign-in' + (e.reason ? '?ended=' + encodeURIComponent(e.reason) : ''));
    });
    on('reset', function () {
      ['releases', 'builds', 'config', 'processes', 'domains', 'ledger', 'repo', 'pipelines', 'addons'].forEach(changed);
    });
    source.addEventListener('error', function () {
      body.removeAttribute('data-live');
      banner.hidden = false;
      body.setAttribute('data-reconnecting', 'true');
      // The browser retries by itself while the stream is merely cut; a 502 from the router while
      // rackd restarts closes it for good, so it is opened again here, from the last event seen.
      if (source.readyState === EventSource.CLOSED && !retryTimer) {
        retryTimer = setTimeout(function () {
          retryTimer = null;
          connect();
        }, 2000);
      }
    });
  }
  if (url) connect();
})();
