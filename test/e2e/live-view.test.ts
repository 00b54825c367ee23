import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromiumSkip, launchChromium, watchProblems } from '../support/browser.ts';
import { main as cli } from '../../shared/cli/main.ts';
import { DEMO_SETTINGS_YAML } from '../../shared/cli/demo-history.ts';
import { ciDeployment } from '../support/fixtures.ts';
import { sign } from '../support/signing.ts';

const dir = mkdtempSync(join(tmpdir(), 'devstats-live-'));
const screenshot = join(dir, 'live.png');
const config = join(dir, 'devstats.yaml');
const TOKEN = 'live-view-token';
let child: ChildProcess | undefined;
let output = '';
let base = '';

before(async () => {
  writeFileSync(config, DEMO_SETTINGS_YAML);
  const env = { DEVSTATS_DATA_DIR: dir, DEVSTATS_CONFIG: config };
  // A short demo history first, in the store the server will read.
  const from = new Date(Date.now() - 21 * 86_400_000).toISOString().slice(0, 10);
  assert.equal(await cli(['demo', '--from', from], env, () => undefined), 0);
  // `npm start`, as its script runs it.
  child = spawn(process.execPath, ['--import', './scripts/preflight.js', 'functions/local/start.ts'], {
    env: { ...process.env, ...env, PORT: '0', HOST: '127.0.0.1', DEPLOY_WEBHOOK_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const deadline = Date.now() + 20_000;
  while (!/ingest on (http:\/\/\S+?)\//.test(output)) {
    if (Date.now() > deadline) throw new Error(`npm start did not start: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  base = (/ingest on (http:\/\/\S+?)\//.exec(output)?.[1] ?? '').replace('localhost', '127.0.0.1');
});

after(() => {
  if (child?.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
  process.stdout.write(`# live view screenshot: ${screenshot}\n`);
});

test('npm start says what runs where, without ExperimentalWarning lines', () => {
  assert.match(output, /^DevStats embedded mode: ingest on http:\/\/127\.0\.0\.1:\d+\/ \(127\.0\.0\.1 only\)$/m);
  assert.match(output, /^ {2}store {4}.*devstats\.sqlite$/m);
  assert.match(output, /^ {2}Datadog {2}no DD_API_KEY: requests written to .*datadog\/\*\.jsonl$/m);
  assert.match(output, /ci secret set/);
  assert.doesNotMatch(output, /ExperimentalWarning/);
});

test(
  'GET / in headless Chromium: the demo history per team, the latest deliveries and why, no console errors',
  { skip: chromiumSkip },
  async () => {
    // Two deliveries of our own: one accepted with a warning, one refused.
    const accepted = await fetch(`${base}/deployments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: sign.bearer(TOKEN) },
      body: JSON.stringify({
        ...ciDeployment({ id: 'live-1' }),
        finishedAt: new Date().toISOString(),
        startedAt: new Date(Date.now() - 60_000).toISOString(),
      }),
    });
    assert.equal(accepted.status, 202);
    const refused = await fetch(`${base}/deployments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: sign.bearer('wrong') },
      body: JSON.stringify(ciDeployment()),
    });
    assert.equal(refused.status, 401);

    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1200, height: 1400 } });
      const problems = watchProblems(page, (url) => url.startsWith(base));
      // The stored deploy appears once process has handled it.
      let deliveries: string[][] = [];
      for (let attempt = 0; attempt < 50; attempt++) {
        const response = await page.goto(`${base}/`);
        assert.equal(response?.status(), 200);
        type Row = { querySelectorAll(s: string): ArrayLike<{ textContent: string | null }> };
        deliveries = await page.$$eval('table.deliveries tbody tr', (rows: Row[]) =>
          rows.map((r) => [Array.from(r.querySelectorAll('td'), (td) => td.textContent ?? '').join('|')]),
        );
        if (deliveries.some(([text]) => text?.includes('ci:billing:live-1') && text.includes('stored (1 event)')))
          break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const rows = deliveries.map(([text]) => text ?? '');
      assert.ok(
        rows.some((r) => /^[^|]+ ago\|ci\|deployment\|ci:billing:live-1\|202 accepted\|stored \(1 event\)$/.test(r)),
        rows.join('\n'),
      );
      assert.ok(
        rows.some((r) => /^[^|]+ ago\|ci\|\|\|401 refused: [^|]*token[^|]*\|–$/.test(r)),
        rows.join('\n'),
      );
      assert.equal(await page.locator('meta[http-equiv="refresh"]').count(), 1);

      // Each source's last delivery: ci in this run; github, terraform and pagerduty from the demo.
      const sources = await page.$$eval(
        'table:not(.deliveries) tbody tr',
        (trs: Array<{ textContent: string | null }>) =>
          trs.map((t) => t.textContent ?? '').filter((t) => /never|ago/.test(t)),
      );
      for (const source of ['ci', 'github', 'terraform', 'pagerduty'])
        assert.ok(
          sources.some((s) => s.startsWith(source) && /\d{4}-\d{2}-\d{2}T/.test(s)),
          `${source}: ${sources.join(' | ')}`,
        );

      // The headline of every team, with the report's charts drawn.
      const headings = await page.$$eval('section.team h2', (hs: Array<{ textContent: string | null }>) =>
        hs.map((h) => h.textContent),
      );
      assert.deepEqual(headings, ['Team payments', 'Team search', 'Team platform', 'Organisation (all teams)']);
      type SvgElement = {
        getBoundingClientRect(): { width: number; height: number };
        querySelectorAll(s: string): { length: number };
      };
      const charts = await page.$$eval('figure.chart svg', (svgs: SvgElement[]) =>
        svgs.map((svg) => ({
          width: svg.getBoundingClientRect().width,
          points: svg.querySelectorAll('circle').length,
        })),
      );
      assert.equal(charts.length, 8);
      for (const chart of charts) assert.ok(chart.width > 100, JSON.stringify(chart));
      // Weekly points need a week ending in the quarter so far (none in a quarter's first 6 days).
      const today = new Date();
      const quarterStart = Date.UTC(today.getUTCFullYear(), Math.floor(today.getUTCMonth() / 3) * 3, 1);
      if (today.getTime() - quarterStart >= 7 * 86_400_000)
        assert.ok(charts.filter((c) => c.points > 0).length >= 4, JSON.stringify(charts));
      const payments = await page.locator('section.team').first().locator('tbody tr').first().textContent();
      assert.match(payments ?? '', /^Deploys per developer per day\d+\.\d{3}/);
      await page.screenshot({ path: screenshot, fullPage: true });
      assert.ok(statSync(screenshot).size > 10_000);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  },
);
