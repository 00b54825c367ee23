import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { buildReport, previousPeriod, quarter } from '../../shared/report/figures.ts';
import { renderHtml } from '../../shared/report/render.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { fill, settings } from '../support/report-history.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM)
  ? undefined
  : process.env.CI === 'true'
    ? (() => {
        throw new Error('CI=true but Chromium is not installed (.ci/run installs Debian chromium)');
      })()
    : 'Chromium is not installed (apt-get install chromium)';

const dir = mkdtempSync(join(tmpdir(), 'devstats-report-'));
const htmlFile = join(dir, 'report.html');
const screenshot = join(dir, 'report.png');

before(async () => {
  const store = new SqliteStore(':memory:');
  await fill(store);
  const period = quarter('2026-Q3');
  const report = await buildReport(store, settings, {
    period,
    comparison: previousPeriod(period),
    annotations: [
      { date: '2026-08-15', label: 'service mesh rollout' },
      { date: '2026-09-05', label: 'merge queue' },
    ],
  });
  writeFileSync(htmlFile, renderHtml(report));
  await store.close();
});

test('the HTML report in headless Chromium: no console errors, every chart drawn, a screenshot', { skip }, async () => {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 900, height: 1200 } });
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('request', (request) => {
      if (!request.url().startsWith('file:')) problems.push(`network request: ${request.url()}`);
    });
    await page.goto(pathToFileURL(htmlFile).href);
    // Runs in the page; typed by hand, as the project compiles without the DOM library.
    type SvgElement = {
      getBoundingClientRect(): { width: number; height: number };
      querySelectorAll(selector: string): { length: number };
    };
    const charts = await page.$$eval('figure.chart svg', (svgs: SvgElement[]) =>
      svgs.map((svg) => {
        const box = svg.getBoundingClientRect();
        return {
          width: box.width,
          height: box.height,
          markers: svg.querySelectorAll('.marker').length,
          points: svg.querySelectorAll('circle').length,
        };
      }),
    );
    // Two charts per team (payments, search, all), each with both milestones drawn.
    assert.equal(charts.length, 6);
    for (const chart of charts) {
      assert.ok(chart.width > 100 && chart.height > 50, JSON.stringify(chart));
      assert.equal(chart.markers, 2);
    }
    assert.ok(
      charts.some((c) => c.points > 0),
      'some weekly points are drawn',
    );
    // Every chart has a table of its figures for screen readers.
    assert.equal(await page.locator('details table').count(), 3);
    await page.screenshot({ path: screenshot, fullPage: true });
    assert.ok(statSync(screenshot).size > 10_000);
    // It prints on A4.
    const pdf = await page.pdf({ format: 'A4' });
    assert.ok(pdf.length > 10_000);
    assert.deepEqual(problems, []);
  } finally {
    await browser.close();
  }
});

after(() => {
  process.stdout.write(`# report screenshot: ${screenshot}\n`);
});
