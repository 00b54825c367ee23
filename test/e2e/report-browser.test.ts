import assert from 'node:assert/strict';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromiumSkip, launchChromium, watchProblems } from '../support/browser.ts';
import { pathToFileURL } from 'node:url';
import { buildReport, previousPeriod, quarter } from '../../shared/report/figures.ts';
import { renderHtml } from '../../shared/report/render.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { fill, settings } from '../support/report-history.ts';

const dir = mkdtempSync(join(tmpdir(), 'devstats-report-'));
const htmlFile = join(dir, 'report.html');
const inProgressFile = join(dir, 'report-in-progress.html');
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
  // The same quarter on 2026-09-15, still running.
  const running = await buildReport(store, settings, {
    period,
    comparison: previousPeriod(period),
    now: new Date('2026-09-15T12:00:00Z'),
  });
  writeFileSync(inProgressFile, renderHtml(running));
  await store.close();
});

test(
  'the HTML report in headless Chromium: no console errors, every chart drawn, a screenshot',
  { skip: chromiumSkip },
  async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 900, height: 1200 } });
      const problems = watchProblems(page, (url) => url.startsWith('file:'));
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
      assert.equal(await page.locator('details:not(.rework) table').count(), 3);
      // The rework drill-down: the rollback of payments (and so of all), with its rule.
      assert.equal(await page.locator('details.rework').count(), 2);
      assert.match((await page.locator('details.rework').first().textContent()) ?? '', /rollback/);
      await page.screenshot({ path: screenshot, fullPage: true });
      assert.ok(statSync(screenshot).size > 10_000);
      // It prints on A4.
      const pdf = await page.pdf({ format: 'A4' });
      assert.ok(pdf.length > 10_000);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  },
);

test(
  'the report of a quarter in progress in Chromium: elapsed days in the heading, comparisons labelled, no point after today',
  { skip: chromiumSkip },
  async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 900, height: 1200 } });
      const problems = watchProblems(page, (url) => url.startsWith('file:'));
      await page.goto(pathToFileURL(inProgressFile).href);
      assert.equal(await page.locator('h1').textContent(), 'Delivery report: 2026-Q3, day 77 of 92');
      const header = await page
        .locator('section.team')
        .first()
        .locator('table')
        .first()
        .locator('thead th')
        .allTextContents();
      assert.deepEqual(header, [
        'Figure',
        '2026-Q3, day 77 of 92',
        'the first 77 days of 2026-Q2',
        'Change',
        '2026-Q2 (whole, for reference)',
      ]);
      // Every drawn point is of a week that ended before today; the axis ends today.
      const points = await page.locator('figure.chart circle title').allTextContents();
      assert.ok(points.length > 0);
      for (const point of points) assert.ok(point.slice(0, 10) < '2026-09-15', point);
      const ends = await page.locator('figure.chart svg text.tick[text-anchor="end"]').allTextContents();
      assert.ok(ends.includes('2026-09-15'), ends.join(' '));
      assert.ok(!ends.some((t) => t > '2026-09-15' && /^\d{4}-/.test(t)), ends.join(' '));
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  },
);

after(() => {
  process.stdout.write(`# report screenshot: ${screenshot}\n`);
});
