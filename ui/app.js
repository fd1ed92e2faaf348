// The district admins' console. It speaks only the public API (/api/v1),
// with the identity the person signed in with, so it can do exactly what
// that user may do. Plain DOM, no framework, no build step: the binary
// serves this file as written.
//
// Every value a client chose (tenant names, learner ids, user ids, reasons)
// is put on the page as text (textContent), never as HTML.
'use strict';

(function () {
  const API = '/api/v1';
  const IDENTITY_KEY = 'tenant-console.identity';
  const SEATS_PAGE = 25;
  const AUDIT_PAGE = 25;
  // Bulk assign takes at most this many learner ids per request (README).
  const BULK_MAX = 10000;

  const main = document.getElementById('main');
  const who = document.getElementById('who');

  // ---- identity (sessionStorage: gone when the tab closes) -------------

  function identity() {
    try {
      const id = JSON.parse(sessionStorage.getItem(IDENTITY_KEY) || 'null');
      return id && typeof id.value === 'string' && (id.mode === 'header' || id.mode === 'jwt') ? id : null;
    } catch (_) {
      return null;
    }
  }

  function signIn(id, userId) {
    sessionStorage.setItem(IDENTITY_KEY, JSON.stringify({ mode: id.mode, value: id.value, user: userId }));
  }

  function signOut() {
    sessionStorage.removeItem(IDENTITY_KEY);
  }

  function credentials(id) {
    if (!id) return {};
    return id.mode === 'jwt' ? { Authorization: 'Bearer ' + id.value } : { 'X-User-ID': id.value };
  }

  // ---- the API -----------------------------------------------------------

  // A refusal as a person reads it: the API's own `detail` sentence.
  class ApiError extends Error {
    constructor(status, sentence, code, challenge, problems) {
      super(sentence);
      this.status = status;
      this.code = code || null;
      this.challenge = challenge || null;
      // A refused roster package: each problem as `file:line: column: message`.
      this.problems = problems || [];
    }
  }

  async function request(path, options) {
    const opts = options || {};
    let headers;
    try {
      headers = new Headers(credentials(opts.identity === undefined ? identity() : opts.identity));
    } catch (_) {
      // A header carries only Latin-1 text, and ids are ASCII anyway.
      throw new ApiError(0, 'This identity cannot be sent: user ids and tokens hold only printable ASCII characters (letters, digits, punctuation).');
    }
    let body;
    if (opts.json !== undefined) {
      headers.set('Content-Type', 'application/json');
      body = JSON.stringify(opts.json);
    } else if (opts.body !== undefined) {
      headers.set('Content-Type', opts.contentType);
      body = opts.body;
    }
    let res;
    try {
      res = await fetch(API + path, { method: opts.method || 'GET', headers, body, cache: 'no-store' });
    } catch (_) {
      throw new ApiError(0, 'The service could not be reached. Check the connection and try again.');
    }
    if (!res.ok) throw await refusal(res);
    return res;
  }

  async function refusal(res) {
    let detail = null;
    let code = null;
    let problems = [];
    try {
      const body = await res.json();
      if (body && typeof body.detail === 'string') {
        detail = body.detail;
        code = typeof body.error_code === 'string' ? body.error_code : null;
        if (Array.isArray(body.errors)) problems = body.errors.filter((e) => typeof e === 'string');
      }
    } catch (_) {
      // Not JSON (a proxy's page, say): described below by its status.
    }
    if (!detail) detail = 'The service answered ' + res.status + (res.statusText ? ' ' + res.statusText : '') + '.';
    return new ApiError(res.status, sentence(detail), code, res.headers.get('WWW-Authenticate'), problems);
  }

  function sentence(text) {
    return /[.!?]$/.test(text) ? text : text + '.';
  }

  async function getJson(path, options) {
    const res = await request(path, options);
    return res.json();
  }

  async function sendJson(method, path, json) {
    const res = await request(path, { method, json });
    return { status: res.status, body: await res.json() };
  }

  function q(params) {
    const s = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
      if (v !== undefined && v !== null && v !== '') s.set(k, String(v));
    }
    const text = s.toString();
    return text ? '?' + text : '';
  }

  // ---- DOM helpers -------------------------------------------------------

  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, kids);
    return el;
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG, tag);
    setAttrs(el, attrs);
    append(el, kids);
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.setAttribute('class', v);
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(el, kids) {
    for (const kid of kids.flat(Infinity)) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : String(kid));
    }
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  let fieldSeq = 0;
  function field(labelText, control, hint, cls) {
    const id = control.id || 'f' + ++fieldSeq;
    control.id = id;
    const hintEl = hint ? h('p', { class: 'hint', id: id + '-hint' }, hint) : null;
    if (hintEl) control.setAttribute('aria-describedby', hintEl.id);
    return h('div', { class: 'field' + (cls ? ' ' + cls : '') }, h('label', { for: id }, labelText), control, hintEl);
  }

  // A live region for the outcome of an action: `role=alert` for errors.
  function messageBox() {
    const box = h('div', { class: 'message', role: 'status', 'aria-live': 'polite' });
    box.show = (kind, text) => {
      box.className = 'message ' + kind;
      box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
      box.textContent = text;
    };
    box.clear = () => {
      box.className = 'message';
      box.textContent = '';
    };
    return box;
  }

  function errorBox(err) {
    return h('div', { class: 'error', role: 'alert' }, describe(err));
  }

  function describe(err) {
    return err instanceof ApiError ? err.message : 'Something went wrong in the console: ' + String(err && err.message);
  }

  function crumbs(items) {
    return h(
      'nav',
      { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('ol', null, items.map(([text, href]) => h('li', null, href ? h('a', { href }, text) : h('span', { 'aria-current': 'page' }, text))))
    );
  }

  const number = new Intl.NumberFormat();
  function n(x) {
    return number.format(x);
  }
  function pct(x) {
    return (Math.round(x * 10) / 10).toString() + '%';
  }

  const when = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  function time(ts) {
    if (!ts) return '';
    const d = new Date(String(ts).replace(/(\.\d{3})\d+/, '$1'));
    return isNaN(d) ? String(ts) : when.format(d);
  }

  function pill(kind, text) {
    return h('span', { class: 'pill ' + kind }, text || kind.replace(/_/g, ' '));
  }

  // ---- page frame and routing -------------------------------------------

  // Each render gets a token; a page that a newer one replaced drops its
  // late answers instead of drawing over the new page.
  let current = 0;

  function page(title, ...kids) {
    document.title = title + ' · Seat console';
    clear(main);
    const h1 = h('h1', { tabindex: '-1' }, title);
    append(main, [kids.shift(), h1, kids]);
    return h1;
  }

  function showWho(me) {
    clear(who);
    const id = identity();
    if (!id) return;
    const name = (me && me.user_id) || id.user || '';
    append(who, [
      h('span', null, 'Signed in as ', h('strong', { id: 'signed-in-user' }, name), me && me.platform_admin ? ' (platform admin)' : ''),
      h('button', { type: 'button', class: 'secondary small', id: 'sign-out', onclick: () => { signOut(); go('#/signin'); } }, 'Sign out'),
    ]);
  }

  function go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  let focusOnRender = false;
  function route() {
    const hash = location.hash || '#/';
    if (!hash.startsWith('#/')) return;
    const token = ++current;
    const parts = hash.slice(2).split('/');
    const id = identity();
    const ctx = {
      live: () => token === current,
      focus: (h1) => {
        if (focusOnRender && h1) h1.focus();
      },
    };
    if (!id || parts[0] === 'signin') {
      showWho(null);
      renderSignIn(ctx);
    } else if (parts[0] === 'district' && /^\d+$/.test(parts[1] || '')) {
      renderDistrict(ctx, Number(parts[1]));
    } else if (parts[0] === 'school' && /^\d+$/.test(parts[1] || '')) {
      renderSchool(ctx, Number(parts[1]));
    } else if (parts[0] === 'audit' && /^\d+$/.test(parts[1] || '')) {
      renderAudit(ctx, Number(parts[1]));
    } else {
      renderHome(ctx);
    }
    focusOnRender = true;
  }

  // A refused identity (401) on any page: back to sign-in, saying why.
  function failed(ctx, err, where) {
    if (!ctx.live()) return;
    if (err instanceof ApiError && err.status === 401) {
      signOut();
      signInNotice = 'Your sign-in was not accepted: ' + err.message + ' Sign in again.';
      go('#/signin');
      return;
    }
    clear(where);
    where.append(errorBox(err));
  }

  let signInNotice = null;

  // The caller, fetched once per page (roles change while the console is open).
  async function me() {
    const m = await getJson('/me');
    showWho(m);
    return m;
  }

  function actionsFor(m, tenantId, parentId) {
    if (!m) return [];
    if (m.platform_admin || !m.enforce_roles) return ['read', 'read_audit', 'allocate', 'purchase', 'manage_tenant', 'manage_roles'];
    const here = m.tenants.find((t) => t.tenant_id === tenantId);
    if (here) return here.actions;
    const parent = parentId ? m.tenants.find((t) => t.tenant_id === parentId) : null;
    return parent ? parent.actions : [];
  }

  function roleName(m, tenantId) {
    if (!m) return null;
    if (m.platform_admin) return 'platform admin';
    const here = m.tenants.find((t) => t.tenant_id === tenantId);
    return here && here.role ? here.role : null;
  }

  // ---- sign-in -----------------------------------------------------------

  async function renderSignIn(ctx) {
    signOut();
    const h1 = page('Sign in');
    const card = h('div', { class: 'card signin' });
    main.append(card);
    ctx.focus(h1);
    const notice = signInNotice;
    signInNotice = null;
    card.append(h('p', { class: 'muted' }, 'Checking how this service identifies people…'));
    // The service says how it identifies callers in its 401 challenge:
    // `X-User-ID ...` (a user id) or `Bearer ...` (a token).
    let mode = 'header';
    let probeError = null;
    try {
      await request('/me', { identity: null });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) {
        if (/^\s*bearer/i.test(err.challenge || '')) mode = 'jwt';
      } else {
        probeError = err;
      }
    }
    if (!ctx.live()) return;
    clear(card);
    const msg = messageBox();
    let control;
    if (mode === 'jwt') {
      control = h('textarea', { id: 'token', name: 'token', required: true, autocomplete: 'off', spellcheck: 'false', rows: 4 });
      card.append(h('p', null, 'Paste the access token your organisation issued to you.'));
    } else {
      control = h('input', { type: 'text', id: 'user-id', name: 'user-id', required: true, autocomplete: 'username', spellcheck: 'false' });
      card.append(h('p', null, 'Enter your user id, as your organisation registered it.'));
    }
    const button = h('button', { type: 'submit', id: 'sign-in' }, 'Sign in');
    const form = h('form', { novalidate: true }, field(mode === 'jwt' ? 'Access token' : 'User id', control), button, msg);
    card.append(form);
    if (notice) msg.show('error', notice);
    if (probeError) msg.show('error', describe(probeError));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      // HTTP drops the spaces around a header's value anyway.
      const value = control.value.trim();
      if (!value) {
        msg.show('error', mode === 'jwt' ? 'Paste a token to sign in.' : 'Enter a user id to sign in.');
        control.focus();
        return;
      }
      button.disabled = true;
      msg.show('notice', 'Signing in…');
      const candidate = { mode, value };
      try {
        const m = await getJson('/me', { identity: candidate });
        signIn(candidate, m.user_id);
        go('#/');
      } catch (err) {
        msg.show('error', err instanceof ApiError && err.status === 401 ? 'Sign-in refused: ' + err.message + ' Check it and try again.' : describe(err));
        control.focus();
      } finally {
        button.disabled = false;
      }
    });
    control.focus();
  }

  // ---- districts ---------------------------------------------------------

  async function renderHome(ctx) {
    const h1 = page('Your districts');
    const body = h('div', { class: 'stack' }, h('p', { class: 'muted' }, 'Loading…'));
    main.append(body);
    ctx.focus(h1);
    try {
      const [m, first] = await Promise.all([me(), getJson('/districts' + q({ limit: 100 }))]);
      if (!ctx.live()) return;
      clear(body);
      const list = h('ul', { class: 'schools districts', id: 'districts' });
      const card = h('section', { class: 'card', 'aria-labelledby': 'districts-h' }, h('h2', { id: 'districts-h' }, 'Districts'), list);
      body.append(card);
      const more = h('button', { type: 'button', class: 'secondary', id: 'more-districts' }, 'Show more districts');
      const addPage = (pageData) => {
        for (const d of pageData.items) {
          list.append(
            h(
              'li',
              null,
              h('a', { class: 'name', href: '#/district/' + d.id }, d.name),
              h('span', { class: 'counts' }, d.is_active ? 'Active' : pill('inactive')),
              h('span', { class: 'counts' }, roleName(m, d.id) ? 'Your role: ' + roleName(m, d.id) : '')
            )
          );
        }
        more.hidden = !pageData.next_cursor;
        more.onclick = async () => {
          more.disabled = true;
          try {
            addPage(await getJson('/districts' + q({ limit: 100, cursor: pageData.next_cursor })));
          } catch (err) {
            failed(ctx, err, card);
          } finally {
            more.disabled = false;
          }
        };
      };
      addPage(first);
      card.append(more);
      // Schools where the caller holds a role of their own (not through a district).
      const schoolRoles = new Set(m.roles.filter((r) => r.is_active).map((r) => r.tenant_id));
      const schools = m.tenants.filter((t) => t.kind === 'school' && schoolRoles.has(t.tenant_id));
      if (schools.length) {
        body.append(
          h(
            'section',
            { class: 'card', 'aria-labelledby': 'schools-h' },
            h('h2', { id: 'schools-h' }, 'Your schools'),
            h(
              'ul',
              { class: 'schools' },
              schools.map((t) => h('li', null, h('a', { class: 'name', href: '#/school/' + t.tenant_id }, t.name), h('span', { class: 'counts' }, 'Your role: ' + (t.role || 'none')), h('span')))
            )
          )
        );
      }
      if (!first.items.length && !schools.length) {
        clear(list);
        card.append(h('p', null, 'You have no role in any district yet. Ask your platform administrator to grant you one.'));
      }
    } catch (err) {
      failed(ctx, err, body);
    }
  }

  // ---- a district ----------------------------------------------------------

  async function renderDistrict(ctx, id) {
    const nav = crumbs([['Districts', '#/'], ['District ' + id]]);
    const h1 = page('District ' + id, nav);
    const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
    main.append(body);
    ctx.focus(h1);
    try {
      const [m, summary] = await Promise.all([me(), getJson('/district/' + id + '/summary')]);
      if (!ctx.live()) return;
      h1.textContent = summary.tenant_name;
      document.title = summary.tenant_name + ' · Seat console';
      nav.replaceWith(crumbs([['Districts', '#/'], [summary.tenant_name]]));
      clear(body);
      const alertsCard = h('section', { class: 'card', 'aria-labelledby': 'alerts-h' }, h('h2', { id: 'alerts-h' }, 'Alerts'), h('p', { class: 'muted' }, 'Loading…'));
      const historyCard = h('section', { class: 'card chart', 'aria-labelledby': 'history-h' }, h('h2', { id: 'history-h' }, 'Utilization history'));
      const schoolsCard = h('section', { class: 'card', 'aria-labelledby': 'schools-h' }, h('h2', { id: 'schools-h' }, 'Schools'));
      const exportMsg = messageBox();
      append(body, [
        tiles(summary),
        h(
          'div',
          { class: 'actions' },
          h('a', { class: 'button secondary', href: '#/audit/' + id, id: 'open-audit' }, 'Audit trail'),
          exportButton(id, exportMsg)
        ),
        exportMsg,
        schoolsCard,
        h('div', { class: 'grid2' }, historyCard, alertsCard),
      ]);
      const names = new Map([[summary.tenant_id, summary.tenant_name]]);
      for (const sc of summary.schools) names.set(sc.tenant_id, sc.tenant_name);
      const rows = summary.schools.slice();
      if (summary.own.total_seats > 0) rows.push(Object.assign({}, summary.own, { tenant_name: summary.tenant_name + ' (district seats)' }));
      // The district's own threshold is drawn on its history chart (the
      // schools' thresholds are their own, not the district's).
      let threshold = null;
      try {
        const alerts = await getJson('/alerts' + q({ tenantId: id }));
        if (!ctx.live()) return;
        threshold = alerts.threshold_percent;
        renderAlerts(alertsCard, alerts, names);
      } catch (err) {
        failed(ctx, err, alertsCard.lastChild);
      }
      schoolsCard.append(schoolBars(rows, m));
      renderHistory(ctx, historyCard, id, threshold, 30);
      if (actionsFor(m, id, null).indexOf('manage_tenant') >= 0) {
        body.append(rosterCard(id, route));
      }
    } catch (err) {
      failed(ctx, err, body);
    }
  }

  // A OneRoster package: checked first (a dry run shows what it would do),
  // then imported once the person has read the report and confirms.
  function rosterCard(districtId, imported) {
    const file = h('input', { type: 'file', id: 'roster-file', accept: '.zip,application/zip' });
    const check = h('button', { type: 'submit', id: 'roster-check' }, 'Check the package');
    const confirm = h('button', { type: 'button', id: 'roster-import', hidden: true }, 'Import it');
    const msg = messageBox();
    msg.id = 'roster-message';
    const report = h('div', { id: 'roster-report', hidden: true });
    let checked = null;
    const send = async (dryRun) => {
      const f = file.files && file.files[0];
      const bytes = await f.arrayBuffer();
      const res = await request('/district/' + districtId + '/roster' + (dryRun ? q({ dry_run: 'true' }) : ''), {
        method: 'POST',
        body: bytes,
        contentType: 'application/zip',
      });
      return res.json();
    };
    file.addEventListener('change', () => {
      checked = null;
      confirm.hidden = true;
      clear(report);
      report.hidden = true;
      msg.clear();
    });
    const form = h(
      'form',
      { novalidate: true },
      field('OneRoster 1.2 CSV package (ZIP)', file, 'Checked first: nothing changes until you confirm the import.'),
      h('div', { class: 'actions' }, check, confirm),
      msg
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clear(report);
      report.hidden = true;
      confirm.hidden = true;
      if (!file.files || !file.files[0]) {
        msg.show('error', 'Choose a roster package (a ZIP file) first.');
        file.focus();
        return;
      }
      check.disabled = true;
      msg.show('notice', 'Checking ' + file.files[0].name + '…');
      try {
        checked = await send(true);
        msg.show('notice', 'Nothing has changed yet. This is what the import would do; choose "Import it" to apply it.');
        append(report, rosterReport(checked));
        report.hidden = false;
        confirm.hidden = false;
        confirm.focus();
      } catch (err) {
        msg.show('error', describe(err));
        if (err.problems.length) {
          append(report, [
            h('h3', null, 'Problems in the package'),
            h('ul', { id: 'roster-problems' }, err.problems.map((p) => h('li', { class: 'mono' }, p))),
          ]);
          report.hidden = false;
        }
      } finally {
        check.disabled = false;
      }
    });
    confirm.addEventListener('click', async () => {
      if (!checked) return;
      confirm.disabled = true;
      msg.show('notice', 'Importing…');
      try {
        const done = await send(false);
        clear(report);
        append(report, rosterReport(done));
        msg.show('ok', 'Imported: ' + rosterTotals(done) + '.');
        confirm.hidden = true;
        checked = null;
        const refresh = h('button', { type: 'button', class: 'secondary', id: 'roster-refresh' }, 'Show the updated district');
        refresh.addEventListener('click', imported);
        report.append(h('div', { class: 'actions' }, refresh));
        refresh.focus();
      } catch (err) {
        msg.show('error', describe(err));
      } finally {
        confirm.disabled = false;
      }
    });
    return h('section', { class: 'card', 'aria-labelledby': 'roster-h', id: 'roster-card' }, h('h2', { id: 'roster-h' }, 'Roster import'), form, report);
  }

  function rosterTotals(r) {
    const parts = Object.entries(r.totals || {})
      .filter(([, v]) => v > 0)
      .map(([k, v]) => n(v) + ' ' + k.replace(/_/g, ' '));
    return parts.length ? parts.join(', ') : 'no changes';
  }

  function rosterReport(r) {
    const count = (list) => (Array.isArray(list) ? list.length : 0);
    return [
      h('p', { id: 'roster-summary' }, (r.dry_run ? 'Would do: ' : 'Done: ') + rosterTotals(r) + '.'),
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { id: 'roster-schools' },
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'School'), h('th', { scope: 'col' }, 'Change'), h('th', { scope: 'col', class: 'num' }, 'Seated'), h('th', { scope: 'col', class: 'num' }, 'Already seated'), h('th', { scope: 'col', class: 'num' }, 'Seats reclaimed'), h('th', { scope: 'col', class: 'num' }, 'Without a seat'))),
          h(
            'tbody',
            null,
            (r.schools || []).map((sc) =>
              h('tr', { 'data-school': sc.sourced_id }, h('td', null, sc.name), h('td', null, sc.change), h('td', { class: 'num' }, n(sc.seated)), h('td', { class: 'num' }, n(sc.already_seated)), h('td', { class: 'num' }, n(count(sc.reclaimed))), h('td', { class: 'num' }, n(count(sc.unseated))))
            )
          )
        )
      ),
      h('p', { class: 'muted' }, 'Staff roles: ' + n(count(r.roles && r.roles.granted)) + ' granted, ' + n(count(r.roles && r.roles.deactivated)) + ' deactivated.'),
    ];
  }

  function tiles(summary) {
    const tile = (cls, label, value) => h('div', { class: 'tile ' + cls, 'data-count': cls }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value));
    return h(
      'div',
      { class: 'tiles', id: 'counts', 'aria-label': 'Seat counts' },
      tile('utilization', 'Utilization', pct(summary.utilization_percentage)),
      tile('total', 'Total seats', n(summary.total_seats)),
      tile('free', 'Free', n(summary.free_seats)),
      tile('assigned', 'Assigned', n(summary.assigned_seats)),
      tile('reserved', 'Reserved', n(summary.reserved_seats))
    );
  }

  function schoolBars(rows, m) {
    if (!rows.length) return h('p', { class: 'muted' }, 'This district has no schools yet.');
    return h(
      'ul',
      { class: 'schools', id: 'school-list' },
      rows.map((sc) => {
        const used = sc.total_seats ? (sc.assigned_seats / sc.total_seats) * 100 : 0;
        const held = sc.total_seats ? (sc.reserved_seats / sc.total_seats) * 100 : 0;
        const assignedFill = h('div', { class: 'fill' });
        assignedFill.style.width = used + '%';
        const reservedFill = h('div', { class: 'fill reserved' });
        reservedFill.style.left = used + '%';
        reservedFill.style.width = held + '%';
        const bar = h('div', { class: 'bar', role: 'img', 'aria-label': sc.tenant_name + ': ' + pct(sc.utilization_percentage) + ' of seats in use' }, assignedFill, reservedFill);
        const role = roleName(m, sc.tenant_id);
        return h(
          'li',
          { 'data-tenant': sc.tenant_id },
          h('div', null, h('a', { class: 'name', href: '#/school/' + sc.tenant_id }, sc.tenant_name), role ? h('div', { class: 'counts' }, 'Your role: ' + role) : null),
          h('div', null, bar, h('div', { class: 'bar-label' }, pct(sc.utilization_percentage) + ' in use')),
          h(
            'div',
            { class: 'counts' },
            h('span', { 'data-count': 'free' }, n(sc.free_seats) + ' free'),
            ' · ',
            h('span', { 'data-count': 'assigned' }, n(sc.assigned_seats) + ' assigned'),
            ' · ',
            h('span', { 'data-count': 'reserved' }, n(sc.reserved_seats) + ' reserved'),
            ' · ',
            h('span', { 'data-count': 'total' }, n(sc.total_seats) + ' total')
          )
        );
      })
    );
  }

  function renderAlerts(card, alerts, names) {
    clear(card);
    card.append(h('h2', { id: 'alerts-h' }, 'Alerts'));
    card.append(
      h('p', { class: 'muted' }, alerts.threshold_percent === null ? 'No alert threshold is set on the district itself (each school may have its own).' : 'The district alerts at ' + pct(alerts.threshold_percent) + ' utilization (the dashed line on the chart).')
    );
    if (!alerts.alerts.length) {
      card.append(h('p', null, 'No alerts raised.'));
      return;
    }
    const newest = alerts.alerts.slice().reverse().slice(0, 10);
    card.append(
      h(
        'ul',
        { class: 'alerts', id: 'alert-list' },
        newest.map((a) =>
          h(
            'li',
            null,
            pill(a.direction === 'up' ? 'broken' : 'free', a.direction === 'up' ? 'above' : 'below'),
            ' ',
            h('strong', null, names.get(a.tenant_id) || 'Tenant ' + a.tenant_id),
            ' went from ' + pct(a.utilization_before) + ' to ' + pct(a.utilization_after) + ' (threshold ' + pct(a.threshold_percent) + ') ',
            h('span', { class: 'muted' }, time(a.created_at))
          )
        )
      )
    );
    if (alerts.alerts.length > newest.length) card.append(h('p', { class: 'muted' }, 'Showing the newest 10 of ' + alerts.alerts.length + '.'));
  }

  async function renderHistory(ctx, card, tenantId, threshold, days) {
    clear(card);
    const choice = h(
      'select',
      { id: 'history-days' },
      [7, 30, 90, 365].map((d) => h('option', { value: d, selected: d === days }, 'Last ' + d + ' days'))
    );
    choice.addEventListener('change', () => renderHistory(ctx, card, tenantId, threshold, Number(choice.value)));
    const chartBox = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
    append(card, [h('h2', { id: 'history-h' }, 'Utilization history'), field('Period', choice, null, 'narrow'), chartBox]);
    try {
      const history = await getJson('/seats/history' + q({ tenantId, days }));
      if (!ctx.live()) return;
      clear(chartBox);
      chartBox.append(chart(history.days, threshold, chartBox.clientWidth));
    } catch (err) {
      failed(ctx, err, chartBox);
    }
  }

  // Utilization per day as an inline SVG line over a 0–100% scale.
  // `width`: the box's width in CSS pixels, so that the text in the SVG
  // keeps its size on a phone instead of being scaled down with the chart.
  function chart(days, threshold, width) {
    const W = Math.max(280, Math.min(900, Math.round(width || 560)));
    const H = 220;
    const L = 38;
    const R = 12;
    const T = 12;
    const B = 28;
    const x = (i) => L + (days.length > 1 ? (i * (W - L - R)) / (days.length - 1) : (W - L - R) / 2);
    const y = (p) => T + ((100 - Math.max(0, Math.min(100, p))) * (H - T - B)) / 100;
    const last = days[days.length - 1];
    const summary = last
      ? 'Utilization over ' + days.length + ' days, from ' + pct(days[0].utilization_percentage) + ' on ' + days[0].date + ' to ' + pct(last.utilization_percentage) + ' on ' + last.date + '.'
      : 'No history yet.';
    const svg = s('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': summary, id: 'history-chart' }, s('title', null, summary));
    for (const p of [0, 25, 50, 75, 100]) {
      svg.append(s('line', { class: p === 0 ? 'axis' : 'grid', x1: L, x2: W - R, y1: y(p), y2: y(p) }));
      svg.append(s('text', { x: L - 6, y: y(p) + 4, 'text-anchor': 'end' }, p + '%'));
    }
    if (threshold !== null && threshold !== undefined) {
      svg.append(s('line', { class: 'threshold', x1: L, x2: W - R, y1: y(threshold), y2: y(threshold) }));
    }
    if (days.length) {
      const pts = days.map((d, i) => x(i).toFixed(1) + ',' + y(d.utilization_percentage).toFixed(1));
      svg.append(s('polygon', { class: 'area', points: x(0).toFixed(1) + ',' + y(0) + ' ' + pts.join(' ') + ' ' + x(days.length - 1).toFixed(1) + ',' + y(0) }));
      svg.append(s('polyline', { class: 'line', points: pts.join(' ') }));
      days.forEach((d, i) => {
        svg.append(
          s('circle', { class: 'dot', cx: x(i), cy: y(d.utilization_percentage), r: days.length > 60 ? 1.5 : 2.5 }, s('title', null, d.date + ': ' + pct(d.utilization_percentage) + ' (' + d.assigned_seats + ' of ' + d.total_seats + ' assigned)'))
        );
      });
      svg.append(s('text', { x: x(0), y: H - 8, 'text-anchor': 'start' }, days[0].date));
      svg.append(s('text', { x: x(days.length - 1), y: H - 8, 'text-anchor': 'end' }, last.date));
    }
    return h('figure', null, svg, h('figcaption', { class: 'hint' }, summary + (last ? ' Today: ' + last.assigned_seats + ' of ' + last.total_seats + ' seats assigned.' : '')));
  }

  // ---- CSV export: fetched with the identity, then saved as a file ---------

  function exportButton(tenantId, msg) {
    const button = h('button', { type: 'button', class: 'secondary', id: 'export-csv' }, 'Download seats (CSV)');
    button.addEventListener('click', async () => {
      button.disabled = true;
      msg.show('notice', 'Preparing the export…');
      try {
        const res = await request('/seats/export' + q({ tenantId }));
        const blob = await res.blob();
        const url = URL.createObjectURL(blob);
        const a = h('a', { href: url, download: 'seats-' + tenantId + '.csv', hidden: true });
        document.body.append(a);
        a.click();
        a.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60000);
        msg.show('ok', 'Downloaded seats-' + tenantId + '.csv (' + n(blob.size) + ' bytes).');
      } catch (err) {
        msg.show('error', err instanceof TypeError ? 'The export stopped before it was complete. Try again.' : describe(err));
      } finally {
        button.disabled = false;
      }
    });
    return button;
  }

  // ---- a school (any tenant's seats) -------------------------------------

  async function renderSchool(ctx, id) {
    const nav = crumbs([['Districts', '#/'], ['School ' + id]]);
    const h1 = page('School ' + id, nav);
    const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
    main.append(body);
    ctx.focus(h1);
    try {
      const [m, tenant] = await Promise.all([me(), getJson('/tenant/' + id)]);
      let parent = null;
      if (tenant.parent_id) {
        try {
          parent = await getJson('/tenant/' + tenant.parent_id);
        } catch (_) {
          // A school's admin may not see its district: the crumb says less.
        }
      }
      if (!ctx.live()) return;
      h1.textContent = tenant.name;
      document.title = tenant.name + ' · Seat console';
      nav.replaceWith(crumbs(parent ? [['Districts', '#/'], [parent.name, '#/district/' + parent.id], [tenant.name]] : [['Districts', '#/'], [tenant.name]]));
      clear(body);
      const actions = actionsFor(m, tenant.id, tenant.parent_id);
      const canAssign = actions.includes('allocate');
      const countsBox = h('div');
      const exportMsg = messageBox();
      const seatsCard = h('section', { class: 'card', 'aria-labelledby': 'seats-h' });
      const bulkResults = h('section', { class: 'card', id: 'bulk-results', hidden: true, 'aria-labelledby': 'bulk-results-h' });
      const refresh = async () => {
        try {
          const summary = await getJson('/seats/summary' + q({ tenantId: id }));
          if (!ctx.live()) return;
          clear(countsBox);
          countsBox.append(tiles(summary));
        } catch (err) {
          failed(ctx, err, countsBox);
        }
      };
      const table = seatTable(ctx, seatsCard, id, canAssign, () => refresh());
      const changed = async () => {
        await Promise.all([refresh(), table.reload()]);
      };
      append(body, [
        tenant.is_active ? null : h('p', { class: 'notice message' }, 'This tenant is inactive: its seats can be read but not changed.'),
        countsBox,
        h(
          'div',
          { class: 'actions' },
          h('a', { class: 'button secondary', href: '#/audit/' + id, id: 'open-audit' }, 'Audit trail'),
          exportButton(id, exportMsg)
        ),
        exportMsg,
        canAssign
          ? [h('div', { class: 'grid2' }, assignCard(id, changed), bulkCard(id, changed, bulkResults)), bulkResults]
          : h('p', { class: 'notice message' }, 'Your role here (' + (roleName(m, tenant.id) || 'none') + ') may view seats but not assign or reclaim them.'),
        seatsCard,
      ]);
      await changed();
    } catch (err) {
      failed(ctx, err, body);
    }
  }

  function assignCard(tenantId, changed) {
    const input = h('input', { type: 'text', id: 'assign-learner', autocomplete: 'off', spellcheck: 'false', required: true });
    const button = h('button', { type: 'submit', id: 'assign-submit' }, 'Assign a seat');
    const msg = messageBox();
    msg.id = 'assign-result';
    const form = h('form', { novalidate: true }, h('div', { class: 'form-row' }, field('Learner id', input, 'The lowest free seat is assigned.'), button), msg);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const learner = input.value.trim();
      if (!learner) {
        msg.show('error', 'Enter the learner id to assign a seat to.');
        input.focus();
        return;
      }
      button.disabled = true;
      try {
        const r = await sendJson('POST', '/seats/assign', { tenant_id: tenantId, learner_id: learner });
        msg.show('ok', r.status === 201 ? 'Seat ' + r.body.id + ' assigned to ' + learner + '.' : learner + ' already holds seat ' + r.body.id + ': nothing changed.');
        input.value = '';
        await changed();
      } catch (err) {
        msg.show('error', describe(err));
      } finally {
        button.disabled = false;
      }
    });
    return h('section', { class: 'card', 'aria-labelledby': 'assign-h' }, h('h2', { id: 'assign-h' }, 'Assign one learner'), form);
  }

  // Learner ids from pasted text or a CSV file: the first column of each
  // line, a header line `learner_id` skipped, blank lines dropped. Each id
  // keeps the line it came from, so that results can name it.
  function learnerIds(text) {
    const out = [];
    const lines = text.split(/\r\n|\n|\r/);
    lines.forEach((line, i) => {
      let cell = line;
      const m = /^\s*"((?:[^"]|"")*)"/.exec(line);
      if (m) cell = m[1].replace(/""/g, '"');
      else if (line.includes(',')) cell = line.slice(0, line.indexOf(','));
      if (!cell.trim()) return;
      if (out.length === 0 && /^\s*learner[ _-]?id\s*$/i.test(cell)) return;
      out.push({ line: i + 1, id: cell });
    });
    return out;
  }

  // The order results are counted in: what worked, then what did not.
  const RESULTS = ['assigned', 'already_assigned', 'duplicate', 'invalid', 'no_free_seat'];

  function bulkCard(tenantId, changed, results) {
    const text = h('textarea', { id: 'bulk-text', spellcheck: 'false', autocomplete: 'off' });
    const file = h('input', { type: 'file', id: 'bulk-file', accept: '.csv,text/csv,text/plain' });
    const button = h('button', { type: 'submit', id: 'bulk-submit' }, 'Assign all');
    const msg = messageBox();
    msg.id = 'bulk-message';
    file.addEventListener('change', async () => {
      const f = file.files && file.files[0];
      if (!f) return;
      try {
        text.value = await f.text();
        msg.show('notice', 'Read ' + f.name + ': ' + learnerIds(text.value).length + ' learner ids. Check them, then choose "Assign all".');
      } catch (_) {
        msg.show('error', 'The file ' + f.name + ' could not be read.');
      }
    });
    const form = h(
      'form',
      { novalidate: true },
      field('Learner ids, one per line', text, 'Paste a list, or a CSV whose first column holds the ids (a "learner_id" header line is skipped).'),
      field('…or read them from a CSV file', file),
      button,
      msg
    );
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      clear(results);
      results.hidden = true;
      const rows = learnerIds(text.value);
      if (!rows.length) {
        msg.show('error', 'Paste at least one learner id, or choose a CSV file.');
        text.focus();
        return;
      }
      if (rows.length > BULK_MAX) {
        msg.show('error', 'At most ' + n(BULK_MAX) + ' learners can be assigned at once; this list has ' + n(rows.length) + '.');
        return;
      }
      button.disabled = true;
      msg.show('notice', 'Assigning ' + n(rows.length) + ' learners…');
      try {
        const r = await sendJson('POST', '/seats/assign/bulk', { tenant_id: tenantId, learner_ids: rows.map((x) => x.id) });
        const t = r.body.totals || {};
        const known = (k) => (RESULTS.indexOf(k) < 0 ? RESULTS.length : RESULTS.indexOf(k));
        const parts = Object.entries(t)
          .filter(([, v]) => v > 0)
          .sort(([a], [b]) => known(a) - known(b))
          .map(([k, v]) => n(v) + ' ' + k.replace(/_/g, ' '));
        const problems = r.body.results.filter((x) => x.result !== 'assigned' && x.result !== 'already_assigned').length;
        msg.show(problems ? 'notice' : 'ok', 'Done: ' + parts.join(', ') + '.' + (problems ? ' ' + problems + ' rows were not assigned: see below.' : ''));
        append(results, [h('h2', { id: 'bulk-results-h' }, 'Bulk assign: one row per learner id sent'), bulkTable(rows, r.body.results)]);
        results.hidden = false;
        await changed();
      } catch (err) {
        msg.show('error', describe(err));
      } finally {
        button.disabled = false;
      }
    });
    return h('section', { class: 'card', 'aria-labelledby': 'bulk-h' }, h('h2', { id: 'bulk-h' }, 'Assign many learners'), form);
  }

  function bulkTable(rows, results) {
    // Rows that need attention first, then the rest, each in input order.
    const order = results.map((r, i) => ({ r, i })).sort((a, b) => rank(a.r) - rank(b.r) || a.i - b.i);
    return h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { id: 'bulk-table' },
        h('thead', null, h('tr', null, h('th', { scope: 'col', class: 'num' }, 'Line'), h('th', { scope: 'col' }, 'Learner id'), h('th', { scope: 'col' }, 'Result'), h('th', { scope: 'col', class: 'num' }, 'Seat'), h('th', { scope: 'col' }, 'Detail'))),
        h(
          'tbody',
          null,
          order.map(({ r, i }) =>
            h(
              'tr',
              { 'data-result': r.result },
              h('td', { class: 'num' }, rows[i] ? rows[i].line : i + 1),
              h('td', { class: 'mono' }, r.learner_id === null ? '' : r.learner_id.length > 80 ? r.learner_id.slice(0, 77) + '…' : r.learner_id),
              h('td', null, pill(r.result === 'assigned' ? 'assigned_ok' : r.result, r.result.replace(/_/g, ' '))),
              h('td', { class: 'num' }, r.seat ? r.seat.id : ''),
              h('td', null, r.detail || '')
            )
          )
        )
      )
    );
  }

  function rank(r) {
    return r.result === 'assigned' || r.result === 'already_assigned' ? 1 : 0;
  }

  // The seats table: filters, cursor paging (a stack of the cursors that
  // led to each page, for "Previous"), reclaim with an inline confirm.
  function seatTable(ctx, card, tenantId, canReclaim, afterChange) {
    const stateSel = h(
      'select',
      { id: 'filter-state' },
      h('option', { value: '' }, 'Any state'),
      h('option', { value: 'free' }, 'Free'),
      h('option', { value: 'assigned' }, 'Assigned'),
      h('option', { value: 'reserved' }, 'Reserved')
    );
    const learner = h('input', { type: 'text', id: 'filter-learner', autocomplete: 'off', spellcheck: 'false' });
    const apply = h('button', { type: 'submit', id: 'filter-apply' }, 'Show seats');
    const reset = h('button', { type: 'button', class: 'secondary', id: 'filter-clear' }, 'Clear');
    const filters = h(
      'form',
      { novalidate: true, 'aria-label': 'Filter seats' },
      h('div', { class: 'form-row' }, field('State', stateSel, null, 'narrow'), field('Learner id', learner, 'Exact id: shows the seat this learner holds.'), apply, reset)
    );
    const msg = messageBox();
    const tableBox = h('div', { class: 'table-wrap' });
    const prev = h('button', { type: 'button', class: 'secondary', id: 'seats-prev' }, 'Previous page');
    const next = h('button', { type: 'button', class: 'secondary', id: 'seats-next' }, 'Next page');
    const where = h('span', { class: 'muted', id: 'seats-page' });
    append(card, [h('h2', { id: 'seats-h' }, 'Seats'), filters, msg, tableBox, h('div', { class: 'pager' }, prev, where, next)]);

    let cursors = [null];
    let nextCursor = null;
    let query = {};

    async function load() {
      const cursor = cursors[cursors.length - 1];
      try {
        const pageData = await getJson('/seats' + q(Object.assign({ tenantId, limit: SEATS_PAGE, cursor }, query)));
        if (!ctx.live()) return;
        nextCursor = pageData.next_cursor;
        draw(pageData.items);
        prev.disabled = cursors.length < 2;
        next.disabled = !nextCursor;
        where.textContent = 'Page ' + cursors.length;
      } catch (err) {
        if (!ctx.live()) return;
        if (err instanceof ApiError && err.status === 401) return failed(ctx, err, tableBox);
        clear(tableBox);
        msg.show('error', describe(err));
      }
    }

    function draw(items) {
      msg.clear();
      clear(tableBox);
      if (!items.length) {
        tableBox.append(h('p', { class: 'muted', id: 'seats-empty' }, Object.keys(query).length ? 'No seat matches these filters.' : 'This tenant has no seats yet.'));
        return;
      }
      tableBox.append(
        h(
          'table',
          { id: 'seats-table' },
          h('thead', null, h('tr', null, h('th', { scope: 'col', class: 'num' }, 'Seat'), h('th', { scope: 'col' }, 'State'), h('th', { scope: 'col' }, 'Learner'), h('th', { scope: 'col' }, 'Since'), canReclaim ? h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Actions')) : null)),
          h('tbody', null, items.map(row))
        )
      );
    }

    function row(seat) {
      const actionCell = canReclaim ? h('td') : null;
      if (actionCell && seat.state !== 'free') {
        const label = seat.learner_id ? 'Reclaim seat ' + seat.id + ' from ' + seat.learner_id : 'Reclaim seat ' + seat.id;
        const start = h('button', { type: 'button', class: 'secondary small', 'data-reclaim': seat.id, 'aria-label': label }, 'Reclaim');
        start.addEventListener('click', () => confirmReclaim(actionCell, seat, start));
        actionCell.append(start);
      }
      return h(
        'tr',
        { 'data-seat': seat.id },
        h('td', { class: 'num' }, seat.id),
        h('td', null, pill(seat.state)),
        h('td', { class: 'mono' }, seat.learner_id || ''),
        h('td', { class: 'nowrap' }, time(seat.assigned_at || seat.reserved_at || null)),
        actionCell
      );
    }

    function confirmReclaim(cell, seat, start) {
      clear(cell);
      const yes = h('button', { type: 'button', class: 'danger small', 'data-confirm': seat.id }, 'Confirm reclaim');
      const no = h('button', { type: 'button', class: 'secondary small' }, 'Cancel');
      no.addEventListener('click', () => {
        clear(cell);
        cell.append(start);
        start.focus();
      });
      yes.addEventListener('click', async () => {
        yes.disabled = true;
        no.disabled = true;
        try {
          await sendJson('POST', '/seats/reclaim', { seat_id: seat.id, reason: 'Reclaimed in the console' });
          await afterChange();
          await load();
          msg.show('ok', 'Seat ' + seat.id + ' reclaimed' + (seat.learner_id ? ' from ' + seat.learner_id : '') + '.');
        } catch (err) {
          msg.show('error', describe(err));
          yes.disabled = false;
          no.disabled = false;
        }
      });
      append(cell, [yes, ' ', no]);
      yes.focus();
    }

    filters.addEventListener('submit', (ev) => {
      ev.preventDefault();
      query = {};
      if (stateSel.value) query.state = stateSel.value;
      if (learner.value.trim()) query.learnerId = learner.value.trim();
      cursors = [null];
      load();
    });
    reset.addEventListener('click', () => {
      stateSel.value = '';
      learner.value = '';
      query = {};
      cursors = [null];
      load();
    });
    prev.addEventListener('click', () => {
      if (cursors.length > 1) cursors.pop();
      load();
    });
    next.addEventListener('click', () => {
      if (nextCursor) cursors.push(nextCursor);
      load();
    });
    return { reload: load };
  }

  // ---- the audit trail ---------------------------------------------------

  async function renderAudit(ctx, id) {
    const nav = crumbs([['Districts', '#/'], ['Tenant ' + id], ['Audit trail']]);
    const h1 = page('Audit trail', nav);
    const body = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
    main.append(body);
    ctx.focus(h1);
    let tenant;
    let parent = null;
    try {
      const [, t] = await Promise.all([me(), getJson('/tenant/' + id)]);
      tenant = t;
      if (tenant.parent_id) parent = await getJson('/tenant/' + tenant.parent_id).catch(() => null);
    } catch (err) {
      return failed(ctx, err, body);
    }
    if (!ctx.live()) return;
    const home = tenant.kind === 'district' ? '#/district/' + id : '#/school/' + id;
    h1.textContent = 'Audit trail: ' + tenant.name;
    document.title = 'Audit trail: ' + tenant.name + ' · Seat console';
    const trail = [['Districts', '#/']];
    if (parent) trail.push([parent.name, '#/district/' + parent.id]);
    nav.replaceWith(crumbs(trail.concat([[tenant.name, home], ['Audit trail']])));
    clear(body);

    const badge = h('div', { id: 'verify-badge', class: 'badge unknown', role: 'status' }, 'Checking the audit chain…');
    const seat = h('input', { type: 'text', id: 'audit-seat', inputmode: 'numeric', autocomplete: 'off' });
    const learner = h('input', { type: 'text', id: 'audit-learner', autocomplete: 'off', spellcheck: 'false' });
    const by = h('input', { type: 'text', id: 'audit-by', autocomplete: 'off', spellcheck: 'false' });
    const since = h('input', { type: 'date', id: 'audit-since' });
    const until = h('input', { type: 'date', id: 'audit-until' });
    const order = h('select', { id: 'audit-order' }, h('option', { value: 'desc' }, 'Newest first'), h('option', { value: 'asc' }, 'Oldest first'));
    const apply = h('button', { type: 'submit', id: 'audit-apply' }, 'Show entries');
    const filters = h(
      'form',
      { novalidate: true, 'aria-label': 'Filter audit entries' },
      h(
        'div',
        { class: 'form-row' },
        field('Seat id', seat, null, 'narrow'),
        field('Learner id', learner),
        field('Changed by (user id)', by),
        field('From (UTC day)', since, null, 'narrow'),
        field('To (UTC day, inclusive)', until, null, 'narrow'),
        field('Order', order, null, 'narrow'),
        apply
      )
    );
    const msg = messageBox();
    const tableBox = h('div', { class: 'table-wrap' });
    const prev = h('button', { type: 'button', class: 'secondary', id: 'audit-prev' }, 'Previous page');
    const next = h('button', { type: 'button', class: 'secondary', id: 'audit-next' }, 'Next page');
    const where = h('span', { class: 'muted' });
    append(body, [
      h('section', { class: 'card', 'aria-labelledby': 'chain-h' }, h('h2', { id: 'chain-h' }, 'Tamper check'), badge),
      h('section', { class: 'card', 'aria-labelledby': 'entries-h' }, h('h2', { id: 'entries-h' }, 'Entries'), filters, msg, tableBox, h('div', { class: 'pager' }, prev, where, next)),
    ]);

    verifyBadge(ctx, badge, id);

    let cursors = [null];
    let nextCursor = null;
    let query = { order: 'desc' };
    const nextDay = (d) => {
      const t = new Date(d + 'T00:00:00Z');
      t.setUTCDate(t.getUTCDate() + 1);
      return t.toISOString();
    };

    async function load() {
      try {
        const data = await getJson('/audit' + q(Object.assign({ tenantId: id, limit: AUDIT_PAGE, cursor: cursors[cursors.length - 1] }, query)));
        if (!ctx.live()) return;
        nextCursor = data.next_cursor;
        msg.clear();
        clear(tableBox);
        if (!data.items.length) {
          tableBox.append(h('p', { class: 'muted' }, nextCursor ? 'No entries on this page match; there are more to look through.' : 'No audit entries match.'));
        } else {
          tableBox.append(auditTable(data.items));
        }
        prev.disabled = cursors.length < 2;
        next.disabled = !nextCursor;
        where.textContent = 'Page ' + cursors.length;
      } catch (err) {
        if (!ctx.live()) return;
        if (err instanceof ApiError && err.status === 401) return failed(ctx, err, tableBox);
        clear(tableBox);
        msg.show('error', describe(err));
        prev.disabled = cursors.length < 2;
        next.disabled = true;
      }
    }

    filters.addEventListener('submit', (ev) => {
      ev.preventDefault();
      query = { order: order.value };
      if (seat.value.trim()) query.seatId = seat.value.trim();
      if (learner.value.trim()) query.learnerId = learner.value.trim();
      if (by.value) query.changedBy = by.value;
      if (since.value) query.since = since.value + 'T00:00:00Z';
      if (until.value) query.until = nextDay(until.value);
      cursors = [null];
      load();
    });
    prev.addEventListener('click', () => {
      if (cursors.length > 1) cursors.pop();
      load();
    });
    next.addEventListener('click', () => {
      if (nextCursor) cursors.push(nextCursor);
      load();
    });
    load();
  }

  function auditTable(items) {
    const learnerCell = (a) => {
      if (a.previous_learner_id && a.new_learner_id && a.previous_learner_id !== a.new_learner_id) return a.previous_learner_id + ' → ' + a.new_learner_id;
      return a.new_learner_id || a.previous_learner_id || '';
    };
    return h(
      'table',
      { id: 'audit-table' },
      h('thead', null, h('tr', null, ['When', 'Seat', 'Change', 'Learner', 'By', 'Reason'].map((t) => h('th', { scope: 'col', class: t === 'Seat' ? 'num' : null }, t)))),
      h(
        'tbody',
        null,
        items.map((a) =>
          h(
            'tr',
            { 'data-audit': a.id },
            h('td', { class: 'nowrap' }, time(a.created_at)),
            h('td', { class: 'num' }, a.seat_id),
            h('td', { class: 'nowrap' }, a.previous_state ? [pill(a.previous_state), ' → '] : null, pill(a.new_state)),
            h('td', { class: 'mono' }, learnerCell(a)),
            h('td', { class: 'mono' }, a.changed_by),
            h('td', null, a.reason)
          )
        )
      )
    );
  }

  async function verifyBadge(ctx, badge, id) {
    try {
      const r = await getJson('/audit/verify' + q({ tenantId: id }));
      if (!ctx.live()) return;
      if (r.intact) {
        badge.className = 'badge intact';
        badge.textContent = '✓ Chain intact: ' + n(r.entries) + ' entries checked' + (r.purged_entries ? ' (' + n(r.purged_entries) + ' purged by retention)' : '') + '.';
      } else {
        const bad = r.first_bad_entry || {};
        badge.className = 'badge broken';
        badge.textContent = '✗ Chain not intact at entry ' + bad.audit_id + (bad.seat_id ? ' (seat ' + bad.seat_id + ')' : '') + ': ' + sentence(bad.reason || 'no reason given');
      }
    } catch (err) {
      if (!ctx.live()) return;
      badge.className = 'badge unknown';
      badge.textContent = 'Not verified: ' + describe(err);
    }
  }

  // ---- start ---------------------------------------------------------------

  document.querySelector('.skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    main.focus();
  });
  window.addEventListener('hashchange', route);
  route();
})();
