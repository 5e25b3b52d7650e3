// cyclecast's dashboard (docs/dashboard.md): plain JavaScript, no framework, no build step.
// Reads /healthz and /api/v1 every few seconds; changes (promote, roll back) need the API token,
// which the user enters and which is kept in sessionStorage for this tab only.
// Every value from the API is put into the page as text (textContent), never as HTML.
'use strict';

(() => {
  const POLL_MS = 5000;
  const TOKEN_KEY = 'cyclecast.api-token';
  const EOL_SOH = 0.8;          // end of life: SOH under 80 % (docs/protocol.md)
  const NEAR_EOL_CYCLES = 100;  // a forecast end of life this close counts as near
  const NEAR_EOL_SOH = 0.85;
  const STALE_CYCLES = 10;      // a latest forecast this many cycles old counts as degraded
  const DEGRADED_FACTOR = 1.5;  // live error over this times the held-out error: degraded
  const COLORS = {
    measured: '#2b2d42', host: '#1d70b8', edge: '#d4351c', eol: '#b10e1e',
  };

  const main = document.getElementById('main');
  const notice = document.getElementById('notice');
  let view = null;      // the page shown: {refresh(), destroy()}
  let timer = null;
  let generation = 0;   // bumps on every navigation: answers for an older page are dropped

  // ---- small helpers -------------------------------------------------------------------------

  // el('td', {class: 'num'}, 'text', child, ...): attributes set as attributes, except `text`.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'text') node.textContent = String(value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const isNum = (x) => typeof x === 'number' && Number.isFinite(x);
  const fixed = (x, digits) => (isNum(x) ? x.toFixed(digits) : '–');
  const soh = (x) => (isNum(x) ? (x * 100).toFixed(1) + ' %' : '–');
  // Errors in percentage points of SOH; small ones keep three decimals.
  const mae = (x) => (isNum(x) ? (x * 100).toFixed(Math.abs(x) < 0.01 ? 3 : 2) + ' pp' : '–');
  const text = (x) => (x === null || x === undefined || x === '' ? '–' : String(x));
  const when = (iso) => (iso ? iso.replace('T', ' ').replace('Z', ' UTC') : '–');
  const kib = (bytes) => (isNum(bytes) ? (bytes / 1024).toFixed(1) + ' KiB' : '–');

  function token() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function api(path, init) {
    const response = await fetch(path, Object.assign({cache: 'no-store'}, init || {}));
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (!response.ok && !(path === '/healthz' && response.status === 503)) {
      const why = body && typeof body.error === 'string' ? body.error : response.statusText;
      throw new ApiError(response.status, why + ' (HTTP ' + response.status + ')');
    }
    return body;
  }

  // A change through the API: POST with the token (when one was entered) and who/why.
  function change(path, why) {
    const headers = {'Content-Type': 'application/json'};
    if (token()) headers.Authorization = 'Bearer ' + token();
    const body = JSON.stringify({who: 'dashboard', why: why || ''});
    return api(path, {method: 'POST', headers, body});
  }

  function say(message, kind) {
    notice.hidden = !message;
    notice.textContent = message || '';
    notice.className = 'notice ' + (kind || 'info');
  }

  function stamp() {
    document.getElementById('updated').textContent =
        'updated ' + new Date().toISOString().slice(11, 19) + ' UTC';
  }

  // A table with a caption and a header row; rows go into the returned tbody.
  function table(caption, columns, attrs) {
    const head = el('tr', {}, ...columns.map((c) => el('th', {scope: 'col', class: c.cls}, c.label)));
    const body = el('tbody');
    const wrapper = el('div', {class: 'table-wrap'},
        el('table', attrs || {}, el('caption', {}, caption), el('thead', {}, head), body));
    return {wrapper, body, head};
  }

  // Replaces the rows of `tbody` unless `data` is what they were last made from: a refresh that
  // changed nothing leaves the rows, and the keyboard focus in them, alone.
  const madeFrom = new WeakMap();
  function fill(tbody, data, makeRows) {
    const signature = JSON.stringify(data);
    if (madeFrom.get(tbody) === signature) return;
    madeFrom.set(tbody, signature);
    tbody.replaceChildren(...makeRows());
  }

  // node.replaceChildren without the absent ones (a `cond ? x : null` left out, not "null").
  function put(node, ...children) {
    node.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
  }

  function cellTd(content, cls) {
    return el('td', {class: cls}, content);
  }

  function badge(label, cls) {
    return el('span', {class: 'badge ' + cls}, label);
  }

  // A chart in a box of its own (the box sets the size); `label` describes it to screen readers.
  function chartBox(label) {
    const canvas = el('canvas', {role: 'img', 'aria-label': label});
    return {box: el('div', {class: 'chart'}, canvas), canvas};
  }

  // ---- the health line and the token form -------------------------------------------------

  async function refreshHealth() {
    const line = document.getElementById('health');
    try {
      const h = await api('/healthz');
      put(line,
          badge(h.status === 'ok' ? 'ok' : 'degraded', h.status === 'ok' ? 'good' : 'bad'),
          ' champion ', el('strong', {}, text(h.champion)),
          h.retraining ? ' · retraining' : '');
      line.title = (h.problems || []).join('\n');
      if (h.problems && h.problems.length) {
        line.append(' · ' + h.problems.length + ' problem' + (h.problems.length > 1 ? 's' : ''));
      }
    } catch (e) {
      line.replaceChildren(badge('unreachable', 'bad'), ' ' + e.message);
    }
  }

  function showTokenState() {
    const has = token() !== '';
    document.getElementById('token-state').textContent = has ? 'changes allowed' : 'read-only';
    document.getElementById('token-forget').hidden = !has;
    document.getElementById('token-input').value = '';
  }

  function setupToken() {
    document.getElementById('token-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const value = document.getElementById('token-input').value.trim();
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      showTokenState();
      say(value ? 'Token kept for this tab; changes will send it.' : '', 'info');
    });
    document.getElementById('token-forget').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      showTokenState();
      say('Token forgotten: read-only.', 'info');
    });
    showTokenState();
  }

  // ---- Fleet -----------------------------------------------------------------------------------

  const fleetColumns = [
    {key: 'cell_id', label: 'Cell'},
    {key: 'rig_id', label: 'Rig'},
    {key: 'last_cycle', label: 'Last cycle', cls: 'num'},
    {key: 'soh', label: 'SOH', cls: 'num'},
    {key: 'soh_10', label: 'Forecast +10', cls: 'num'},
    {key: 'soh_100', label: 'Forecast +100', cls: 'num'},
    {key: 'eol_cycle', label: 'End of life (cycle)', cls: 'num'},
    {key: 'live_mae', label: 'Live error +100', cls: 'num'},
    {key: 'model', label: 'Model'},
    {key: 'origin', label: 'Origin'},
    {key: 'flags', label: 'Attention'},
  ];
  const fleetState = {sort: 'cell_id', direction: 1, filter: '', attentionOnly: false};

  // The live error at +100 of the model and origin that made a forecast, and whether it is
  // degraded (over DEGRADED_FACTOR times the model's held-out error at +100).
  function liveError(models, forecast) {
    const model = forecast && models.get(forecast.model_version);
    if (!model || !model.live_error) return {value: null, degraded: false};
    const byOrigin = model.live_error.by_origin || {};
    const live = byOrigin[forecast.origin] || model.live_error;
    const value = isNum(live.mae_100) ? live.mae_100 : null;
    const heldOut = model.metrics ? model.metrics.mae_100 : null;
    return {value, degraded: value !== null && isNum(heldOut) && value > DEGRADED_FACTOR * heldOut};
  }

  // The end of life at the cell's threshold with its interval, "expected (earliest–latest)", '…'
  // for a bound that does not cross within the horizon; a forecast without an interval shows its
  // expected crossing alone.
  function eolText(f) {
    if (!f) return '–';
    const e = f.eol;
    if (!e) return text(f.eol_cycle);
    if (e.earliest === null && e.latest === null) return text(e.expected);
    const bound = (x) => (isNum(x) ? String(x) : '…');
    return text(e.expected) + ' (' + bound(e.earliest) + '–' + bound(e.latest) + ')';
  }

  function fleetRow(cell, models) {
    const f = cell.forecast;
    const live = liveError(models, f);
    const flags = [];
    const nearEol = (isNum(cell.soh) && cell.soh < NEAR_EOL_SOH) ||
        (f && isNum(f.eol_cycle) && isNum(cell.last_cycle) &&
         f.eol_cycle - cell.last_cycle <= NEAR_EOL_CYCLES);
    if (nearEol) flags.push('near end of life');
    if (live.degraded) flags.push('degraded forecasts');
    else if (f && isNum(cell.last_cycle) && cell.last_cycle - f.at_cycle > STALE_CYCLES) {
      flags.push('stale forecast');
    }
    return {
      cell_id: cell.cell_id, rig_id: cell.rig_id, last_cycle: cell.last_cycle, soh: cell.soh,
      soh_10: f ? f.soh_10 : null, soh_100: f ? f.soh_100 : null, eol_cycle: f ? f.eol_cycle : null,
      eol_text: eolText(f),
      live_mae: live.value, model: f ? f.model_version : null,
      origin: f ? f.origin + (f.node ? ' (' + f.node + ')' : '') : null,
      flags, nearEol,
    };
  }

  function compare(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1;   // no value last, whatever the direction
    if (b === null || b === undefined) return -1;
    if (Array.isArray(a)) return a.length - b.length;
    return typeof a === 'number' ? a - b : String(a).localeCompare(String(b), undefined,
                                                                   {numeric: true});
  }

  function fleetPage() {
    const heading = el('h1', {}, 'Fleet');
    const filter = el('input', {id: 'fleet-filter', type: 'search', placeholder: 'cell, rig, model'});
    const attention = el('input', {id: 'fleet-attention', type: 'checkbox'});
    const controls = el('div', {class: 'controls'},
        el('label', {for: 'fleet-filter'}, 'Filter'), filter,
        el('label', {for: 'fleet-attention', class: 'check'}, attention,
           ' only cells that need attention'));
    const summary = el('p', {id: 'fleet-summary', 'aria-live': 'polite'});
    const t = table('Every cell: latest SOH, its newest forecast and how the model doing it fares',
                    fleetColumns.map((c) => ({label: c.label, cls: c.cls})), {id: 'fleet'});
    // Sorting: a button in each header cell (keyboard-usable), aria-sort on the sorted one.
    t.head.replaceChildren(...fleetColumns.map((c) => {
      const button = el('button', {type: 'button', class: 'sort'}, c.label);
      button.addEventListener('click', () => {
        fleetState.direction = fleetState.sort === c.key ? -fleetState.direction : 1;
        fleetState.sort = c.key;
        render();
      });
      return el('th', {scope: 'col', class: c.cls, 'data-key': c.key}, button);
    }));
    main.replaceChildren(heading, controls, summary, t.wrapper);
    filter.value = fleetState.filter;
    attention.checked = fleetState.attentionOnly;
    filter.addEventListener('input', () => { fleetState.filter = filter.value; render(); });
    attention.addEventListener('change', () => {
      fleetState.attentionOnly = attention.checked;
      render();
    });

    let rows = [];
    function render() {
      for (const th of t.head.children) {
        const sorted = th.dataset.key === fleetState.sort;
        if (sorted) th.setAttribute('aria-sort', fleetState.direction > 0 ? 'ascending' : 'descending');
        else th.removeAttribute('aria-sort');
      }
      const needle = fleetState.filter.trim().toLowerCase();
      const shown = rows.filter((r) => {
        if (fleetState.attentionOnly && r.flags.length === 0) return false;
        if (!needle) return true;
        return [r.cell_id, r.rig_id, r.model, r.origin].some(
            (v) => v && String(v).toLowerCase().includes(needle));
      }).sort((a, b) => {
        const ka = a[fleetState.sort];
        const kb = b[fleetState.sort];
        if (ka === null || ka === undefined || kb === null || kb === undefined) return compare(ka, kb);
        return fleetState.direction * compare(ka, kb);
      });
      fill(t.body, [shown, fleetState], () => shown.map((r) => el('tr', {
        class: [r.nearEol ? 'near-eol' : '', r.flags.some((f) => f !== 'near end of life') ? 'degraded' : '']
            .join(' ').trim() || null,
        'data-cell': r.cell_id,
      },
      el('th', {scope: 'row'}, el('a', {href: '#/cell/' + encodeURIComponent(r.cell_id)}, r.cell_id)),
      cellTd(text(r.rig_id)), cellTd(text(r.last_cycle), 'num'), cellTd(soh(r.soh), 'num'),
      cellTd(soh(r.soh_10), 'num'), cellTd(soh(r.soh_100), 'num'), cellTd(r.eol_text, 'num'),
      cellTd(mae(r.live_mae), 'num'), cellTd(text(r.model)), cellTd(text(r.origin)),
      el('td', {}, ...r.flags.map((f) => badge(f, f === 'near end of life' ? 'warn' : 'bad'))))));
      const near = rows.filter((r) => r.nearEol).length;
      const degraded = rows.filter((r) => r.flags.some((f) => f !== 'near end of life')).length;
      summary.textContent = rows.length + ' cells, ' + shown.length + ' shown; ' + near +
          ' near end of life, ' + degraded + ' with degraded or stale forecasts.';
    }

    return {
      async refresh() {
        const [cells, models] = await Promise.all([api('/api/v1/cells'), api('/api/v1/models')]);
        const byVersion = new Map(models.map((m) => [m.version, m]));
        rows = cells.map((c) => fleetRow(c, byVersion));
        render();
      },
    };
  }

  // ---- Cell ------------------------------------------------------------------------------------

  function cellPage(cellId) {
    const heading = el('h1', {}, 'Cell ', el('span', {class: 'id'}, cellId));
    const facts = el('dl', {class: 'facts', id: 'cell-facts'});
    const note = el('p', {class: 'note', id: 'cell-note', hidden: true});
    const c = chartBox('SOH of cell ' + cellId + ' by cycle, with the forecasts made for it at ' +
                       '+10 and +100 cycles, host and edge; the table below lists the same forecasts');
    const t = table('Forecasts of ' + cellId + ', newest first, against what then happened', [
      {label: 'Made at cycle', cls: 'num'}, {label: 'Origin'}, {label: 'Model'},
      {label: 'SOH +10', cls: 'num'}, {label: 'Error +10', cls: 'num'},
      {label: 'SOH +100', cls: 'num'}, {label: 'Error +100', cls: 'num'},
      {label: 'End of life', cls: 'num'}, {label: 'Made'},
    ], {id: 'cell-forecasts'});
    main.replaceChildren(el('p', {}, el('a', {href: '#/fleet'}, '← Fleet')), heading, facts, note,
                         el('h2', {}, 'SOH and forecasts'), c.box, t.wrapper);
    let chart = null;

    function datasets(cell) {
      const measured = cell.cycles.filter((p) => isNum(p.soh)).map((p) => ({x: p.cycle, y: p.soh}));
      const points = (origin, step) => cell.forecasts
          .filter((f) => f.origin === origin && isNum(step === 10 ? f.soh_10 : f.soh_100))
          .map((f) => ({x: f.at_cycle + step, y: step === 10 ? f.soh_10 : f.soh_100}));
      const xs = measured.map((p) => p.x).concat(cell.forecasts.map((f) => f.at_cycle + 100));
      const xmin = xs.length ? Math.min(...xs) : 0;
      const xmax = xs.length ? Math.max(...xs) : 1;
      return [
        {label: 'Measured SOH', data: measured, showLine: true, borderColor: COLORS.measured,
         backgroundColor: COLORS.measured, pointRadius: 0, borderWidth: 2},
        {label: 'Host forecast +10', data: points('host', 10), borderColor: COLORS.host,
         backgroundColor: COLORS.host, pointStyle: 'circle', pointRadius: 3},
        {label: 'Host forecast +100', data: points('host', 100), borderColor: COLORS.host,
         backgroundColor: 'rgba(29,112,184,0.25)', pointStyle: 'triangle', pointRadius: 4},
        {label: 'Edge forecast +10', data: points('edge', 10), borderColor: COLORS.edge,
         backgroundColor: COLORS.edge, pointStyle: 'rect', pointRadius: 3},
        {label: 'Edge forecast +100', data: points('edge', 100), borderColor: COLORS.edge,
         backgroundColor: 'rgba(212,53,28,0.25)', pointStyle: 'rectRot', pointRadius: 4},
        {label: 'End of life (80 %)', data: [{x: xmin, y: EOL_SOH}, {x: xmax, y: EOL_SOH}],
         showLine: true, borderColor: COLORS.eol, borderDash: [6, 4], pointRadius: 0,
         borderWidth: 1},
      ];
    }

    function draw(cell) {
      if (typeof Chart === 'undefined') {
        c.box.replaceChildren(el('p', {}, 'The charting library did not load.'));
        return;
      }
      const data = {datasets: datasets(cell)};
      if (chart) {
        chart.data = data;
        chart.update('none');
        return;
      }
      chart = new Chart(c.canvas, {
        type: 'scatter',
        data,
        options: {
          animation: false, responsive: true, maintainAspectRatio: false, parsing: false,
          scales: {
            x: {type: 'linear', title: {display: true, text: 'cycle'}},
            y: {title: {display: true, text: 'SOH'},
                ticks: {callback: (v) => Math.round(v * 100) + ' %'}},
          },
          plugins: {legend: {position: 'bottom'}},
        },
      });
    }

    return {
      async refresh() {
        const cell = await api('/api/v1/cells/' + encodeURIComponent(cellId));
        const s = cell.cell;
        const f = s.forecast;
        facts.replaceChildren(
            el('dt', {}, 'Rig'), el('dd', {}, text(s.rig_id)),
            el('dt', {}, 'Cycles'), el('dd', {}, text(s.cycles)),
            el('dt', {}, 'Last cycle'), el('dd', {}, text(s.last_cycle)),
            el('dt', {}, 'SOH'), el('dd', {id: 'cell-soh'}, soh(s.soh)),
            el('dt', {}, 'Forecast +10 / +100'),
            el('dd', {}, f ? soh(f.soh_10) + ' / ' + soh(f.soh_100) : '–'),
            el('dt', {}, 'End of life'), el('dd', {id: 'cell-eol'}, eolText(f)),
            el('dt', {}, 'By'),
            el('dd', {}, f ? f.model_version + ', ' + f.origin + (f.node ? ' ' + f.node : '') : '–'));
        note.hidden = !cell.note;
        note.textContent = cell.note || '';
        fill(t.body, cell.forecasts, () => cell.forecasts.map((x) => el('tr', {},
            cellTd(text(x.at_cycle), 'num'),
            cellTd(x.origin + (x.node ? ' (' + x.node + ')' : '')), cellTd(text(x.model_version)),
            cellTd(soh(x.soh_10), 'num'), cellTd(mae(x.error_10), 'num'),
            cellTd(soh(x.soh_100), 'num'), cellTd(mae(x.error_100), 'num'),
            cellTd(text(x.eol_cycle), 'num'), cellTd(when(x.created_at)))));
        draw(cell);
      },
      destroy() {
        if (chart) chart.destroy();
      },
    };
  }

  // ---- Models ----------------------------------------------------------------------------------

  function bestBaseline(lineage) {
    const baselines = lineage && lineage.baselines_mae;
    let best = null;
    for (const [name, value] of Object.entries(baselines || {})) {
      if (isNum(value) && (!best || value < best.mae)) best = {name, mae: value};
    }
    return best;
  }

  function modelsPage() {
    const why = el('input', {id: 'change-why', type: 'text', maxlength: 1024,
                             placeholder: 'recorded with the change'});
    const rollback = el('button', {type: 'button', id: 'rollback'}, 'Roll back to the previous champion');
    const controls = el('div', {class: 'controls'},
        el('label', {for: 'change-why'}, 'Reason'), why, rollback);
    const t = table('The model registry, newest first: lineage, footprint on the node, held-out ' +
                    'and live error against the best baseline', [
      {label: 'Version'}, {label: 'Status'}, {label: 'Lineage'}, {label: 'Footprint'},
      {label: 'Held-out MAE', cls: 'num'}, {label: 'Best baseline MAE', cls: 'num'},
      {label: 'Live error +100 (host / edge)', cls: 'num'}, {label: 'Scored', cls: 'num'},
      {label: 'Action'},
    ], {id: 'models'});
    main.replaceChildren(el('h1', {}, 'Models'),
        el('p', {class: 'hint'}, 'Promote and roll back need the API token (in the header).'),
        controls, t.wrapper);
    const details = new Map();  // version -> the model with lineage and events

    // `what` the change is ("Promote m-2"), `done` what it did ("Promoted m-2").
    async function act(path, what, done) {
      try {
        const result = await change(path, why.value);
        say(done + ': champion ' + result.champion + ' (previous ' + text(result.previous) + ').',
            'good');
        await Promise.all([refresh(), refreshHealth()]);
      } catch (e) {
        say(what + ' refused: ' + e.message, 'bad');
      }
    }
    rollback.addEventListener('click', () => act('/api/v1/rollback', 'Roll back', 'Rolled back'));

    function lineageCell(m, detail) {
      const lineage = detail && detail.lineage;
      const parts = [];
      if (m.run) parts.push(el('a', {href: '#/runs/' + m.run}, 'run ' + m.run));
      if (lineage && lineage.trigger) parts.push(' · ' + lineage.trigger);
      if (lineage && lineage.data_snapshot) {
        const snap = lineage.data_snapshot;
        parts.push(' · ' + text(snap.cells) + ' cells, ' + text(snap.cycles) + ' cycles');
        if (snap.sha256) parts.push(el('span', {class: 'digest', title: snap.sha256},
                                       ' ' + String(snap.sha256).slice(0, 10)));
      }
      if (lineage && lineage.candidate) parts.push(' · ' + lineage.candidate);
      return el('td', {}, ...(parts.length ? parts : ['–']));
    }

    async function refresh() {
      const models = await api('/api/v1/models');
      // The lineage is in each model's own answer; a registry is a few dozen models at most.
      await Promise.all(models.slice(0, 50).map(async (m) => {
        if (details.has(m.version)) return;
        try {
          details.set(m.version, await api('/api/v1/models/' + encodeURIComponent(m.version)));
        } catch (e) { /* shown without lineage */ }
      }));
      fill(t.body, [models, [...details.keys()]], () => models.map((m) => {
        const detail = details.get(m.version);
        const fp = m.footprint || {};
        const live = m.live_error || {};
        const by = live.by_origin || {};
        const baseline = bestBaseline(detail && detail.lineage);
        const promote = el('button', {type: 'button', class: 'promote',
                                      'aria-label': 'Promote ' + m.version}, 'Promote');
        promote.addEventListener('click', () =>
          act('/api/v1/models/' + encodeURIComponent(m.version) + '/promote',
              'Promote ' + m.version, 'Promoted ' + m.version));
        return el('tr', {'data-version': m.version, class: m.status === 'champion' ? 'champion' : null},
            el('th', {scope: 'row'}, m.version),
            el('td', {title: m.status_reason || ''},
               badge(m.status, m.status === 'champion' ? 'good' : 'plain'),
               m.status_reason ? el('div', {class: 'reason'}, m.status_reason) : null),
            lineageCell(m, detail),
            cellTd(kib(fp.flash_bytes) + ' flash, ' + kib(fp.ram_bytes) + ' RAM' +
                   (fp.kind ? ' (' + fp.kind + ')' : '')),
            cellTd(mae(m.metrics && m.metrics.mae), 'num'),
            cellTd(baseline ? mae(baseline.mae) + ' ' + baseline.name : '–', 'num'),
            cellTd(mae(by.host && by.host.mae_100) + ' / ' + mae(by.edge && by.edge.mae_100), 'num'),
            cellTd(text(live.scored), 'num'),
            el('td', {}, m.status === 'champion' ? 'champion' : promote));
      }));
    }
    return {refresh};
  }

  // ---- Runs ------------------------------------------------------------------------------------

  function progressCell(run) {
    if (run.status !== 'running') return cellTd(text(run.stage));
    const value = isNum(run.progress) ? run.progress : null;
    const bar = el('progress', {max: 1, 'aria-label': 'run ' + run.id + ' progress'});
    if (value !== null) bar.value = value;
    return el('td', {}, bar, ' ', run.stage + (value !== null ? ' ' + Math.round(value * 100) + ' %' : ''),
              run.detail ? el('div', {class: 'reason'}, run.detail) : null,
              isNum(run.eta_s) ? el('div', {class: 'reason'}, 'about ' + Math.round(run.eta_s) + ' s left') : null);
  }

  function runsPage() {
    const t = table('Training runs, newest first', [
      {label: 'Run', cls: 'num'}, {label: 'Trigger'}, {label: 'Requested by'}, {label: 'Status'},
      {label: 'Stage / progress'}, {label: 'Started'}, {label: 'Finished'}, {label: 'Model'},
      {label: 'Report'},
    ], {id: 'runs'});
    main.replaceChildren(el('h1', {}, 'Runs'), t.wrapper);
    return {
      async refresh() {
        const runs = await api('/api/v1/runs');
        fill(t.body, runs, () => runs.map((r) => el('tr', {'data-run': r.id},
            el('th', {scope: 'row', class: 'num'}, el('a', {href: '#/runs/' + r.id}, String(r.id))),
            cellTd(r.trigger), cellTd(r.requested_by),
            el('td', {}, badge(r.status, r.status === 'failed' ? 'bad' : r.status === 'running' ? 'warn' : 'good'),
               r.error ? el('div', {class: 'reason'}, r.error) : null),
            progressCell(r), cellTd(when(r.started_at)), cellTd(when(r.finished_at)),
            cellTd(text(r.model_version)),
            el('td', {}, r.report_url ? el('a', {href: r.report_url, target: '_blank', rel: 'noopener'},
                                           'report') : '–'))));
      },
    };
  }

  function keyValues(object, id) {
    const list = el('dl', {class: 'facts', id});
    for (const [key, value] of Object.entries(object || {})) {
      list.append(el('dt', {}, key),
                  el('dd', {}, value !== null && typeof value === 'object' ? JSON.stringify(value) : text(value)));
    }
    return list;
  }

  function runPage(id) {
    const heading = el('h1', {}, 'Run ' + id);
    const status = el('div', {id: 'run-status', 'aria-live': 'polite'});
    const body = el('div', {id: 'run-body'});
    main.replaceChildren(el('p', {}, el('a', {href: '#/runs'}, '← Runs')), heading, status, body);
    let reportShown = false;
    return {
      async refresh() {
        const r = await api('/api/v1/runs/' + encodeURIComponent(id));
        put(status,
            badge(r.status, r.status === 'failed' ? 'bad' : r.status === 'running' ? 'warn' : 'good'),
            ' ', r.trigger + ', requested by ' + r.requested_by + ', started ' + when(r.started_at),
            r.finished_at ? ', finished ' + when(r.finished_at) : '',
            r.error ? el('p', {class: 'reason'}, r.error) : null);
        if (r.status === 'running') {
          const bar = el('progress', {max: 1, 'aria-label': 'progress of run ' + id});
          if (isNum(r.progress)) bar.value = r.progress;
          put(body, el('p', {}, bar, ' stage ', el('strong', {}, r.stage),
              isNum(r.progress) ? ' ' + Math.round(r.progress * 100) + ' %' : ''),
              el('p', {}, text(r.detail)),
              isNum(r.eta_s) ? el('p', {}, 'about ' + Math.round(r.eta_s) + ' s left') : null);
          return;
        }
        if (reportShown) return;
        reportShown = true;
        const parts = [el('h2', {}, 'Summary'), keyValues(r.summary, 'run-summary'),
                       el('h2', {}, 'Data'), keyValues(r.snapshot, 'run-snapshot')];
        if (r.report_url) {
          parts.push(el('h2', {}, 'Report'),
              el('p', {}, el('a', {href: r.report_url, target: '_blank', rel: 'noopener'},
                              'Open the report in a new tab')),
              el('iframe', {src: r.report_url, title: 'Report of run ' + id, class: 'report',
                            sandbox: 'allow-same-origin'}));
        }
        body.replaceChildren(...parts);
      },
    };
  }

  // ---- Nodes -----------------------------------------------------------------------------------

  const NODE_STATES = {online: 'good', active: 'good', silent: 'warn', unresponsive: 'warn'};

  function gatewaySummary(g) {
    if (!g) return '–';
    return 'queued ' + g.queued + ', timeouts ' + g.timeouts + ', reopens ' + g.reopens +
        ', resets ' + g.resets + ', dropped ' + g.dropped_records;
  }

  // The gateway's own liveness: online or offline (its last will), since when, last heard from.
  function gatewayLiveness(l) {
    if (!l) return '–';
    return el('span', {class: 'gateway-liveness'},
        badge(l.state, l.state === 'online' ? 'good' : 'bad'), ' ', l.client_id,
        el('br'), 'since ' + when(l.since) + ', last seen ' + when(l.last_seen));
  }

  function nodesPage() {
    const t = table('Edge nodes and their gateways: state (from the gateway\'s status, else from ' +
                    'the forecasts), model, last seen, the gateway\'s liveness and what it counts', [
      {label: 'Node'}, {label: 'State'}, {label: 'Model'}, {label: 'Last seen'},
      {label: 'Forecasts stored', cls: 'num'}, {label: 'Cells', cls: 'num'},
      {label: 'Gateway'}, {label: 'Gateway counters'},
    ], {id: 'nodes'});
    const empty = el('p', {id: 'nodes-empty', hidden: true},
        'No node known yet: a node appears with its gateway\'s first status or forecast.');
    main.replaceChildren(el('h1', {}, 'Nodes and gateways'),
        el('p', {class: 'hint'}, 'State online, unresponsive, disconnected or offline as the ' +
           'node\'s gateway reports it (offline too when the gateway itself is gone: its last ' +
           'will); without a report, active when a forecast arrived in the last 10 minutes, else ' +
           'silent.'),
        empty, t.wrapper);
    return {
      async refresh() {
        const nodes = await api('/api/v1/nodes');
        empty.hidden = nodes.length > 0;
        fill(t.body, nodes, () => nodes.map((n) => el('tr', {
          'data-node': n.node, 'data-gateway': n.liveness ? n.liveness.state : 'none'},
            el('th', {scope: 'row'}, n.node),
            el('td', {}, badge(text(n.state), NODE_STATES[n.state] || 'bad')),
            cellTd(text(n.model_version)), cellTd(when(n.last_seen)),
            cellTd(text(n.forecasts), 'num'), cellTd(text(n.cells), 'num'),
            cellTd(gatewayLiveness(n.liveness)), cellTd(gatewaySummary(n.gateway)))));
      },
    };
  }

  // ---- routing and polling ---------------------------------------------------------------------

  function route() {
    const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
    switch (parts[0]) {
      case 'cell': return parts[1] ? {page: 'fleet', make: () => cellPage(parts[1])} : null;
      case 'models': return {page: 'models', make: modelsPage};
      case 'runs': return parts[1] ? {page: 'runs', make: () => runPage(parts[1])}
                                   : {page: 'runs', make: runsPage};
      case 'nodes': return {page: 'nodes', make: nodesPage};
      default: return {page: 'fleet', make: fleetPage};
    }
  }

  async function tick(mine) {
    if (mine !== generation) return;
    clearTimeout(timer);
    try {
      await Promise.all([refreshHealth(), view.refresh()]);
      if (mine !== generation) return;
      stamp();
      if (notice.classList.contains('stale')) say('', 'info');
    } catch (e) {
      if (mine !== generation) return;
      say('Could not update: ' + e.message, 'bad stale');
    }
    if (mine === generation) timer = setTimeout(() => tick(mine), POLL_MS);
  }

  function navigate() {
    // Hashes not of a page ("#main" of the skip link) leave the page as it is.
    if (location.hash && !location.hash.startsWith('#/')) return;
    const target = route();
    if (view && view.destroy) view.destroy();
    generation += 1;
    clearTimeout(timer);
    say('', 'info');
    for (const link of document.querySelectorAll('nav a')) {
      if (link.dataset.page === target.page) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    view = target.make();
    document.title = (main.querySelector('h1') || {}).textContent + ' · cyclecast';
    tick(generation);
  }

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && view) tick(generation);
  });
  window.addEventListener('hashchange', () => {
    navigate();
    if (location.hash.startsWith('#/')) main.focus({preventScroll: true});
  });
  setupToken();
  navigate();
})();
