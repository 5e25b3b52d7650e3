// The dashboard in a real browser: Debian's chromium, headless, driven over the DevTools protocol
// by puppeteer-core, against a running cyclecastd with data (tests/browser/dashboard_test.cc
// starts it and passes what it holds). Checks each page's DOM, that a forecast chart has drawn,
// that promote is refused without the token and works with it, that there are no console errors
// and no horizontal overflow at 390 px; writes screenshots at 1280 and 390 px into --out.
// Prints one line per check; exit 0 when all passed, 1 otherwise.
//
// node dashboard_check.mjs --url http://127.0.0.1:PORT --token T --out DIR --cells N
//      --cell CELL --candidate VERSION --champion VERSION --node NODE
//      --gateway-node NODE --gateway-pid PID [--chromium PATH]
// The gateway of --gateway-node (process --gateway-pid) must be online; the check kills it and
// waits for the open nodes page to show it offline (its last will) without a reload.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, arg, i, all) => {
  if (arg.startsWith('--')) pairs.push([arg.slice(2), all[i + 1]]);
  return pairs;
}, []));
for (const required of ['url', 'token', 'out', 'cells', 'cell', 'candidate', 'champion', 'node',
                        'gateway-node', 'gateway-pid']) {
  if (!args[required]) {
    console.error(`dashboard_check: --${required} is required`);
    process.exit(2);
  }
}
const TIMEOUT_MS = 60000;  // per wait: sanitizer-free but loaded CI machines are slow
const WIDTHS = [1280, 390];
const failures = [];
let passes = 0;
const consoleErrors = [];

function check(condition, what) {
  console.log(`${condition ? 'ok  ' : 'FAIL'} ${what}`);
  if (condition) passes += 1;
  else failures.push(what);
}

fs.mkdirSync(args.out, {recursive: true});
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cyclecast-chromium-'));
const browser = await puppeteer.launch({
  executablePath: args.chromium || '/usr/bin/chromium',
  headless: true,
  userDataDir: profile,
  // As root chromium needs --no-sandbox; no GPU, no first-run or network-reaching extras.
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

try {
  const page = await browser.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    // The browser logs the refused promote (an expected 401) as a failed resource load.
    const where = message.location()?.url || '';
    if (where.includes('/promote') && /status of 401/.test(message.text())) return;
    consoleErrors.push(`console: ${message.text()} (${where})`);
  });
  page.on('pageerror', (error) => consoleErrors.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) =>
    consoleErrors.push(`request failed: ${request.url()} ${request.failure()?.errorText}`));
  // Only the API's own refusals may be HTTP errors (the promote without a token); a 4xx/5xx for
  // anything else (a missing asset, a favicon) is a defect.
  page.on('response', (response) => {
    if (response.status() >= 400 && !response.url().includes('/promote')) {
      consoleErrors.push(`HTTP ${response.status()} for ${response.url()}`);
    }
  });

  async function open(hash, width) {
    await page.setViewport({width, height: width > 600 ? 900 : 844});
    await page.goto(`${args.url}/${hash}`, {waitUntil: 'load'});
  }

  async function rows(selector, atLeast) {
    await page.waitForFunction((s, n) => document.querySelectorAll(s).length >= n, {},
                               selector, atLeast);
    return page.$$eval(selector, (list) => list.map((tr) => tr.innerText));
  }

  async function shot(name, width) {
    await page.screenshot({path: path.join(args.out, `${name}-${width}.png`), fullPage: true});
    const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    check(overflow <= 0, `${name} at ${width} px: the page does not scroll sideways (${overflow})`);
    const leaked = await page.evaluate(
        () => (document.body.innerText.match(/\bundefined\b|\bNaN\b|[A-Za-z0-9]null\b/) || [''])[0]);
    check(leaked === '', `${name} at ${width} px: no "undefined", "NaN" or stray "null" shown ${leaked}`);
  }

  // Non-transparent pixels of the chart's canvas: a drawn chart has thousands.
  async function chartPixels() {
    return page.$eval('.chart canvas', (canvas) => {
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let drawn = 0;
      for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) drawn += 1;
      return drawn;
    });
  }

  const headers = await (await fetch(args.url + '/')).headers;
  check(headers.get('content-type') === 'text/html; charset=utf-8', 'page: Content-Type html');
  check((headers.get('content-security-policy') || '').includes("script-src 'self'"),
        'page: a Content-Security-Policy with script-src \'self\'');

  for (const width of WIDTHS) {
    // Fleet: every cell, with its SOH and forecast.
    await open('#/fleet', width);
    if (width === WIDTHS[0]) {
      // Keyboard: on a fresh page the first Tab reaches the skip link, Enter on it the content.
      await page.keyboard.press('Tab');
      const focused = await page.evaluate(() => document.activeElement.className);
      check(focused === 'skip', 'the first Tab focuses the skip link');
    }
    const fleet = await rows('#fleet tbody tr', Number(args.cells));
    check(fleet.length === Number(args.cells), `fleet at ${width}: ${fleet.length} cells`);
    const row = await page.$eval(`#fleet tbody tr[data-cell="${args.cell}"]`, (tr) => tr.innerText);
    check(/%/.test(row) && row.includes(args.champion), `fleet row of ${args.cell}: SOH and model`);
    // The end of life as the API gives it: expected at the cell's threshold, with its interval
    // when the forecast has one.
    const forecast = (await (await fetch(`${args.url}/api/v1/cells/${args.cell}`)).json()).cell.forecast;
    const eolCell = await page.$eval(`#fleet tbody tr[data-cell="${args.cell}"] td:nth-of-type(6)`,
                                     (td) => td.innerText.trim());
    const bound = (x) => (x === null ? '…' : String(x));
    const eol = forecast ? forecast.eol : null;
    const wanted = !eol ? String(forecast && forecast.eol_cycle !== null ? forecast.eol_cycle : '–')
        : eol.earliest === null && eol.latest === null
        ? (eol.expected === null ? '–' : String(eol.expected))
        : `${eol.expected === null ? '–' : eol.expected} (${bound(eol.earliest)}–${bound(eol.latest)})`;
    check(eolCell === wanted, `fleet end of life of ${args.cell}: '${eolCell}' as the API's '${wanted}'`);
    if (width === WIDTHS[0]) {
      await page.type('#fleet-filter', args.cell);
      await page.waitForFunction(() => document.querySelectorAll('#fleet tbody tr').length >= 1);
      const filtered = await page.$$eval('#fleet tbody tr', (list) => list.map((tr) => tr.dataset.cell));
      check(filtered.includes(args.cell) && filtered.every((c) => c.includes(args.cell)),
            `fleet filter '${args.cell}' keeps only matching cells`);
      await page.$eval('#fleet-filter', (input) => { input.value = ''; input.dispatchEvent(new Event('input')); });
      await page.click('#fleet th[data-key="soh"] button');
      const sorted = await page.$eval('#fleet th[data-key="soh"]', (th) => th.getAttribute('aria-sort'));
      check(sorted === 'ascending', 'fleet sorts by SOH (aria-sort ascending)');
      // Sorting with the keyboard: focus the header button, press Enter.
      await page.focus('#fleet th[data-key="last_cycle"] button');
      await page.keyboard.press('Enter');
      const byKeyboard = await page.$eval('#fleet th[data-key="last_cycle"]',
                                          (th) => th.getAttribute('aria-sort'));
      check(byKeyboard === 'ascending', 'fleet sorts with the keyboard (Enter on a header)');
    }
    await shot('fleet', width);

    // Cell: its history and forecasts, host and edge, drawn.
    await open(`#/cell/${encodeURIComponent(args.cell)}`, width);
    const forecasts = await rows('#cell-forecasts tbody tr', 2);
    check(forecasts.some((r) => r.includes('host')) && forecasts.some((r) => r.includes('edge')),
          `cell ${args.cell} at ${width}: host and edge forecasts listed`);
    await page.waitForFunction(() => {
      const c = document.querySelector('.chart canvas');
      return c && c.width > 0 && c.height > 0;
    });
    let pixels = 0;
    const deadline = Date.now() + TIMEOUT_MS;
    while (Date.now() < deadline && (pixels = await chartPixels()) < 1000) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    check(pixels >= 1000, `cell ${args.cell} at ${width}: the chart has drawn (${pixels} pixels)`);
    await shot('cell', width);

    // Runs and one run's report.
    await open('#/runs', width);
    const runs = await rows('#runs tbody tr', 2);
    check(runs.length >= 2 && runs.some((r) => r.includes('succeeded')), `runs at ${width}`);
    await shot('runs', width);
    await open('#/runs/1', width);
    await page.waitForSelector('#run-summary');
    await page.waitForSelector('iframe.report');
    await shot('run', width);

    // Nodes.
    await open('#/nodes', width);
    const nodes = await rows('#nodes tbody tr', 1);
    check(nodes.some((r) => r.includes(args.node) && r.includes('online')),
          `nodes at ${width}: ${args.node} listed, online`);
    check(nodes.some((r) => r.includes('disconnected')), `nodes at ${width}: a disconnected node`);
    const gatewayRow = `#nodes tr[data-node="${args['gateway-node']}"]`;
    await page.waitForSelector(`${gatewayRow}[data-gateway="online"]`);
    const gatewayText = await page.$eval(gatewayRow, (tr) => tr.textContent);
    check(gatewayText.includes('cyclecast-gateway-' + args['gateway-node']) &&
          gatewayText.includes('online'),
          `nodes at ${width}: the gateway of ${args['gateway-node']} online`);
    await shot('nodes', width);

    // Models (before any change).
    await open('#/models', width);
    const models = await rows('#models tbody tr', 2);
    check(models.some((r) => r.includes(args.candidate)), `models at ${width}: ${args.candidate}`);
    await shot('models', width);
  }

  // The gateway killed: its last will makes it offline on the open page, without a reload.
  await open('#/nodes', 1280);
  const gatewayRow = `#nodes tr[data-node="${args['gateway-node']}"]`;
  await page.waitForSelector(`${gatewayRow}[data-gateway="online"]`);
  process.kill(Number(args['gateway-pid']), 'SIGKILL');
  await page.waitForSelector(`${gatewayRow}[data-gateway="offline"]`);
  const offlineText = await page.$eval(gatewayRow, (tr) => tr.textContent);
  check(/offline/.test(offlineText) && !/online/.test(offlineText),
        `the killed gateway of ${args['gateway-node']} shows offline without a reload: ${offlineText}`);
  await shot('nodes-gateway-offline', 1280);

  // Promote: refused without the token, done with it.
  async function champion() {
    return (await (await fetch(args.url + '/healthz')).json()).champion;
  }
  await open('#/models', 1280);
  await rows('#models tbody tr', 2);
  const promote = `#models tr[data-version="${args.candidate}"] button.promote`;
  await page.click(promote);
  await page.waitForFunction(() => /refused/.test(document.getElementById('notice').textContent));
  const refusal = await page.$eval('#notice', (n) => n.textContent);
  check(/^Promote .* refused: .*HTTP 401/.test(refusal), `promote without the token is refused: ${refusal}`);
  check(await champion() === args.champion, 'the champion is unchanged after the refusal');

  await page.type('#token-input', args.token);
  await page.click('#token-save');
  await page.waitForFunction(() => document.getElementById('token-state').textContent === 'changes allowed');
  const stored = await page.evaluate(() => sessionStorage.getItem('cyclecast.api-token'));
  check(stored === args.token, 'the token is kept in sessionStorage');
  await page.click(promote);
  await page.waitForFunction(() => /^Promoted/.test(document.getElementById('notice').textContent));
  check(await champion() === args.candidate, `promote with the token: ${args.candidate} is champion`);
  await page.waitForFunction((v) => {
    const tr = document.querySelector(`#models tr[data-version="${v}"]`);
    return tr && tr.classList.contains('champion');
  }, {}, args.candidate);
  await shot('models-promoted', 1280);

  // Updates without reloading: a rollback made elsewhere (here, straight through the API) shows
  // on the open page at its next poll.
  const rolledBack = await fetch(args.url + '/api/v1/rollback', {
    method: 'POST',
    headers: {'Authorization': 'Bearer ' + args.token, 'Content-Type': 'application/json'},
    body: JSON.stringify({who: 'dashboard_check', why: 'polling test'}),
  });
  check(rolledBack.status === 200, `rollback through the API: HTTP ${rolledBack.status}`);
  await page.waitForFunction((v) => {
    const tr = document.querySelector(`#models tr[data-version="${v}"]`);
    return tr && tr.classList.contains('champion') &&
        document.getElementById('health').textContent.includes(v);
  }, {}, args.champion);
  check(true, `the open page shows ${args.champion} champion again without a reload`);

  check(consoleErrors.length === 0, `no console errors${consoleErrors.length ? ': ' + consoleErrors.join('; ') : ''}`);
} catch (error) {
  check(false, `the checks ran to their end: ${error.stack || error}`);
} finally {
  await browser.close();
  fs.rmSync(profile, {recursive: true, force: true});
}

console.log(`dashboard_check: ${passes} checks passed, ${failures.length} failed`);
process.exit(failures.length === 0 ? 0 : 1);
