/**
 * The README's pictures, made from the demo history, never by hand: `npm run screenshots` loads the
 * demo into a folder of its own, renders the live view (as `GET /` of `npm start` renders it) and
 * the quarterly report of today's quarter, and photographs both in headless Chromium
 * (`CHROMIUM`, default /usr/bin/chromium) into docs/images/.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { main as cli } from '../shared/cli/main.ts';
import { loadSettings } from '../shared/events/settings-file.ts';
import { loadConfig } from '../shared/pipeline/config.ts';
import { buildReport, previousPeriod, quarter } from '../shared/report/figures.ts';
import { liveReport, renderLiveView } from '../shared/report/live.ts';
import { renderHtml } from '../shared/report/render.ts';
import { openStore } from '../shared/store/open.ts';

const dir = mkdtempSync(join(tmpdir(), 'devstats-screenshots-'));
const images = new URL('../docs/images/', import.meta.url).pathname;
try {
  const env = { DEVSTATS_DATA_DIR: dir };
  if ((await cli(['demo'], env, () => undefined)) !== 0) throw new Error('devstats demo failed');
  const config = loadConfig({ ...env, DEVSTATS_CONFIG: join(dir, 'demo.yaml') });
  const settings = loadSettings(config.settingsPath);
  const store = await openStore(config);
  const now = new Date();
  const live = renderLiveView({
    report: await liveReport(store, settings, now),
    recent: [],
    lastBySource: new Map(),
    seen: await store.sourcesSeen(),
    config,
    settings,
    mode: 'embedded',
    now,
  });
  const today = now.toISOString().slice(0, 10);
  const period = quarter(`${today.slice(0, 4)}-Q${String(Math.floor((Number(today.slice(5, 7)) - 1) / 3) + 1)}`);
  const report = renderHtml(await buildReport(store, settings, { period, comparison: previousPeriod(period), now }));
  await store.close();
  writeFileSync(join(dir, 'live.html'), live);
  writeFileSync(join(dir, 'report.html'), report);
  mkdirSync(images, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    for (const [file, image] of [
      ['live.html', 'live-view.png'],
      ['report.html', 'report.png'],
    ] as const) {
      await page.goto(pathToFileURL(join(dir, file)).href);
      await page.screenshot({ path: join(images, image), clip: { x: 0, y: 0, width: 1100, height: 900 } });
      process.stdout.write(`docs/images/${image}\n`);
    }
  } finally {
    await browser.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
