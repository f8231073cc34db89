
// The dashboard page: fetches api/status (relative to the page, so it works under any
// mount point) every data-refresh-ms and renders it. Everything from the server is set as
// text, never parsed as HTML: dead-letter samples carry senders' data.
//
// Stable data-testid values (NAME: consumer or stream name, FP: fingerprint):
//   ingest-rate, ingest-window, events-total, backlog-total, dlq-total, dlq-groups,
//   replays-in-progress, updated-at, connection-state, error
//   consumer-NAME-{pending,ack-pending,redelivered,lag,last-active,dead-letters,paused,paused-until}
//   replay-NAME-{target,window,events,remaining,ack-pending,last-active,paused,paused-until}
//   dlq-CONSUMER-FP-{count,class,first-seen,last-seen,sample}
//   stream-NAME-{messages,bytes,first-seq,last-seq,last-time}
//   chart-{ingest,backlog,dead-letters} (data-points: points drawn), their lines
//   chart-ingest-rate, chart-backlog-NAME, chart-dead-letters-total (data-last: last value)
// Counts are plain integers; lags and times carry the exact value in data-value (seconds,
// or RFC 3339). A paused flag reads "paused" or "running".
(() => {
  'use strict';
  const refreshMS = Number(document.body.dataset.refreshMs) || 2000;
  const $ = (id) => document.getElementById(id);
  const main = $('main');
  let renders = 0;

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') e.textContent = String(v);
      else if (k === 'testid') e.dataset.testid = v;
      else if (k === 'value') e.dataset.value = String(v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  const isSet = (t) => typeof t === 'string' && !t.startsWith('0001-');
  const ms = (t) => new Date(t).getTime();

  function duration(sec) {
    if (!(sec > 0)) return '0s';
    if (sec < 10) return sec.toFixed(1) + 's';
    const s = Math.round(sec);
    const pad = (n) => String(n).padStart(2, '0');
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + pad(s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + pad(Math.floor(s / 60) % 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor(s / 3600) % 24 + 'h';
  }

  // ago is relative to the snapshot's own time, so the browser's clock does not matter.
  function ago(t, now) {
    if (!isSet(t)) return 'never';
    return duration(Math.max(0, (ms(now) - ms(t)) / 1000)) + ' ago';
  }

  function rate(r) {
    if (r === null || r === undefined) return '—';
    return r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2);
  }

  const num = (testid, n, cls) => el('td', { class: 'n' + (cls ? ' ' + cls : ''), testid, text: n });
  const when = (testid, t, now) => el('td', {}, el('time', { testid, value: isSet(t) ? t : '', datetime: isSet(t) ? t : null, title: isSet(t) ? t : null, text: ago(t, now) }));
  const lag = (testid, c) => el('td', { class: 'n' + (c.lag_seconds > 60 ? ' hot' : ''), testid, value: c.lag_seconds, title: isSet(c.oldest_unacked) ? 'oldest unacknowledged stored ' + c.oldest_unacked : null, text: duration(c.lag_seconds) });

  function state(prefix, c) {
    if (!c.paused) return el('td', {}, el('span', { testid: prefix + '-paused', text: 'running' }));
    return el('td', {},
      el('span', { class: 'paused', testid: prefix + '-paused', text: 'paused' }), ' until ',
      el('time', { testid: prefix + '-paused-until', value: c.paused_until, datetime: c.paused_until, title: c.paused_until, text: new Date(c.paused_until).toLocaleString() }));
  }

  // chart draws series ({name: [{t, v}]}) as an inline SVG line chart over the window
  // ending at now: no library, nothing fetched, only attributes (the CSP allows no inline
  // style).
  const svgNS = $('svg-ns').namespaceURI; // the SVG namespace, as the HTML parser set it
  function svg(tag, attrs) {
    const e = document.createElementNS(svgNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }
  function chart(box, testid, series, now, windowSec, fmt) {
    const W = 300, H = 100, left = 34, bottom = 14;
    const end = ms(now), start = end - windowSec * 1000;
    const names = Object.keys(series).sort();
    let max = 0, points = 0;
    for (const n of names) for (const p of series[n]) { max = Math.max(max, p.v); points++; }
    const top = max > 0 ? max * 1.1 : 1;
    const x = (t) => left + (W - left) * Math.min(1, Math.max(0, (ms(t) - start) / (end - start)));
    const y = (v) => (H - bottom) * (1 - v / top);
    const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', preserveAspectRatio: 'none', 'data-points': points });
    root.dataset.testid = testid;
    root.append(svg('line', { x1: left, y1: H - bottom, x2: W, y2: H - bottom, class: 'axis' }), svg('line', { x1: left, y1: 0, x2: left, y2: H - bottom, class: 'axis' }));
    const label = (t, attrs) => { const e = svg('text', attrs); e.textContent = t; return e; };
    root.append(label(fmt(max > 0 ? max : 1), { x: left - 3, y: 10, 'text-anchor': 'end' }), label('0', { x: left - 3, y: H - bottom, 'text-anchor': 'end' }),
      label('−' + Math.round(windowSec / 60) + 'm', { x: left, y: H - 2 }), label('now', { x: W, y: H - 2, 'text-anchor': 'end' }));
    const legend = el('p', { class: 'legend' });
    names.forEach((n, i) => {
      const pts = series[n];
      const line = svg('polyline', { class: 's' + (i % 5), points: pts.map((p) => x(p.t).toFixed(1) + ',' + y(p.v).toFixed(1)).join(' ') });
      line.dataset.testid = testid + '-' + n;
      line.dataset.last = pts.length ? String(pts[pts.length - 1].v) : '';
      const title = svg('title');
      title.textContent = n + ': ' + (pts.length ? fmt(pts[pts.length - 1].v) : 'no data yet');
      line.append(title);
      root.append(line);
      if (names.length > 1) legend.append(el('span', { class: 's' + (i % 5), text: '— ' + n }));
    });
    if (!points) root.append(label('collecting: a point every few seconds', { x: (W + left) / 2, y: H / 2, 'text-anchor': 'middle' }));
    box.replaceChildren(root, legend);
  }

  function renderHistory(st) {
    const h = st.history;
    if (!h) return;
    chart($('chart-ingest'), 'chart-ingest', { rate: h.ingest_rate || [] }, st.time, h.window_seconds, rate);
    chart($('chart-backlog'), 'chart-backlog', h.backlog || {}, st.time, h.window_seconds, (v) => String(Math.round(v)));
    chart($('chart-dead-letters'), 'chart-dead-letters', { total: h.dead_letters || [] }, st.time, h.window_seconds, (v) => String(Math.round(v)));
  }

  function emptyRow(cols, testid, text) {
    return el('tr', {}, el('td', { colspan: cols, class: 'empty', testid, text }));
  }

  function render(st) {
    const now = st.time;
    const events = (st.streams || []).find((s) => s.name === 'EVENTS');
    const consumers = (st.consumers || []).filter((c) => c.stream === 'EVENTS');
    const replays = st.replays_in_progress || [];
    const groups = st.dead_letter_groups || [];

    $('ingest-rate').textContent = rate(st.ingest_rate);
    $('ingest-rate').dataset.value = st.ingest_rate ?? '';
    $('ingest-window').textContent = st.ingest_rate === null || st.ingest_rate === undefined ? 'measuring' : 'over the last ' + duration(st.ingest_window_seconds);
    $('events-total').textContent = events ? events.messages : '—';
    $('backlog-total').textContent = consumers.reduce((n, c) => n + c.pending + c.ack_pending, 0);
    $('dlq-total').textContent = st.dead_letter_total;
    $('dlq-groups').textContent = groups.length;
    $('replays-in-progress').textContent = replays.length;

    $('consumers').replaceChildren(...(consumers.length ? consumers.map((c) => {
      const p = 'consumer-' + c.name;
      return el('tr', { testid: p },
        el('td', {}, el('strong', { text: c.name }), el('br'), el('code', { text: (c.filter_subjects || []).join(' ') })),
        state(p, c),
        num(p + '-pending', c.pending),
        num(p + '-ack-pending', c.ack_pending),
        num(p + '-redelivered', c.redelivered),
        lag(p + '-lag', c),
        when(p + '-last-active', c.last_active, now),
        num(p + '-dead-letters', c.dead_letters, c.dead_letters > 0 ? 'hot' : ''));
    }) : [emptyRow(8, 'consumers-empty', 'no consumers on EVENTS')]));

    $('replays').replaceChildren(...(replays.length ? replays.map((r) => {
      const p = 'replay-' + r.name;
      const span = r.kind === 'redrive' ? 'dead letters' : r.from_seq + '..' + r.until_seq + (r.force ? ', forced' : '');
      return el('tr', { testid: p },
        el('td', {}, el('strong', { text: r.name }), el('br'), el('code', { text: (r.filter_subjects || []).join(' ') })),
        el('td', { testid: p + '-target', text: r.target }),
        el('td', { testid: p + '-window', text: span }),
        num(p + '-events', r.events),
        num(p + '-remaining', r.remaining),
        num(p + '-ack-pending', r.ack_pending),
        when(p + '-last-active', r.last_active, now),
        state(p, r));
    }) : [emptyRow(8, 'replays-empty', 'none')]));

    $('dlq').replaceChildren(...(groups.length ? groups.map((g) => {
      const p = 'dlq-' + g.consumer + '-' + g.fingerprint;
      return el('tr', { testid: 'dlq-group-' + g.consumer + '-' + g.fingerprint },
        el('td', { text: g.consumer }),
        el('td', { testid: p + '-class', text: g.class }),
        num(p + '-count', g.count, 'hot'),
        when(p + '-first-seen', g.first_seen, now),
        when(p + '-last-seen', g.last_seen, now),
        el('td', { class: 'sample', testid: p + '-sample' }, el('span', { class: 'subj', text: g.sample_subject }), g.sample_error),
        el('td', {}, el('code', { text: g.fingerprint })));
    }) : [emptyRow(7, 'dlq-empty', 'no dead letters')]));

    $('streams').replaceChildren(...(st.streams || []).map((s) => {
      const p = 'stream-' + s.name;
      return el('tr', { testid: p },
        el('td', { text: s.name }),
        num(p + '-messages', s.messages),
        num(p + '-bytes', s.bytes),
        num(p + '-first-seq', s.first_seq),
        num(p + '-last-seq', s.last_seq),
        when(p + '-last-time', s.last_time, now));
    }));

    renderHistory(st);

    const updated = $('updated');
    updated.textContent = new Date(now).toLocaleTimeString();
    updated.dataset.value = now;
    updated.setAttribute('datetime', now);
    main.dataset.renders = String(++renders);
    main.removeAttribute('aria-busy');
  }

  function showState(ok, message) {
    const conn = $('conn');
    conn.textContent = ok ? 'live' : 'stale';
    conn.className = 'conn ' + (ok ? 'live' : 'stale');
    main.classList.toggle('stale', !ok);
    const error = $('error');
    error.hidden = ok;
    error.textContent = ok ? '' : message;
  }

  async function refresh() {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), Math.max(3 * refreshMS, 10000));
    try {
      const res = await fetch('api/status', { cache: 'no-store', signal: abort.signal, headers: { Accept: 'application/json' } });
      const body = await res.json().catch(() => null);
      if (!res.ok || body === null) {
        throw new Error((body && body.error) || 'HTTP ' + res.status);
      }
      render(body);
      showState(true, '');
    } catch (err) {
      const why = err && err.message ? err.message : String(err);
      showState(false, renders ? 'status unavailable, showing the last values read: ' + why : 'status unavailable: ' + why);
    } finally {
      clearTimeout(timer);
      setTimeout(refresh, refreshMS);
    }
  }

  refresh();
})();
