/**
 * Export to Datadog: `process` cold start (with the whole client package imported beside it),
 * Datadog requests per 1,000 deploys in a burst, and deliveries per second end to end in embedded
 * mode, all against a local server that answers like Datadog.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Exporter } from '../shared/export.ts';
import { createLogger } from '../shared/log.ts';
import { createProcessor } from '../shared/process.ts';
import { parseSettings } from '../shared/settings.ts';
import { createDatadogSink } from '../shared/sinks/datadog.ts';
import { SqliteStore } from '../shared/store/sqlite.ts';
import { FakeDatadog } from '../test/support/datadog-server.ts';
import { freePort } from '../test/support/ports.ts';

const dd = await new FakeDatadog().start();
const rows: Array<[string, string]> = [];
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

// ---- cold start -------------------------------------------------------------------------------
/**
 * Runs bench/process-cold.js (the local Datadog answers from this process, so not spawnSync): the
 * deployed bundle (`bundle`), tsc's dist/ (`dist`), or dist/ after the whole client package (`naive`).
 */
async function coldStart(mode: 'bundle' | 'dist' | 'naive'): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'devstats-cold-'));
  const child = spawn(process.execPath, ['bench/process-cold.js'], {
    env: {
      ...process.env,
      DD_API_KEY: 'bench',
      DD_API_URL: dd.url,
      DEVSTATS_DATA_DIR: dataDir,
      DEVSTATS_STORE: 'sqlite',
      DEVSTATS_BUS: 'memory',
      BUNDLE: mode === 'bundle' ? '1' : '0',
      NAIVE: mode === 'naive' ? '1' : '0',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  await new Promise((resolve) => child.once('exit', resolve));
  rmSync(dataDir, { recursive: true, force: true });
  const line = stdout.trim().split('\n').at(-1) ?? '';
  return (JSON.parse(line) as { ms: number }).ms;
}
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 9);
const cold = { bundle: [] as number[], dist: [] as number[], naive: [] as number[] };
for (let i = 0; i < COLD_RUNS; i++)
  for (const mode of ['bundle', 'dist', 'naive'] as const) cold[mode].push(await coldStart(mode));
const spread = (values: number[]) =>
  `${median(values).toFixed(0)} (${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)})`;
rows.push([
  `process cold start to first message handled and exported, as deployed (esbuild bundle; ms, median and range of ${COLD_RUNS}; aim < 300)`,
  spread(cold.bundle),
]);
rows.push(["the same from tsc's dist/ (unbundled: every Datadog model file read)", spread(cold.dist)]);
rows.push(['the same with the whole client package imported first (the naive import)', spread(cold.naive)]);

// ---- batching -----------------------------------------------------------------------------------
{
  const logger = createLogger(() => undefined);
  const store = new SqliteStore(':memory:');
  const settings = parseSettings({});
  const sink = createDatadogSink(
    {
      apiKey: 'bench',
      appKey: undefined,
      site: 'datadoghq.com',
      apiUrl: dd.url,
      timeoutMs: 10_000,
      retries: 2,
      backoffMs: 100,
      dataDir: '/nonexistent',
    },
    logger,
  );
  const exporter = new Exporter({ store, sink, settings, logger, now: () => new Date() });
  const handle = createProcessor({ store, exporter, settings, logger });
  const before = dd.attempts;
  const now = Date.now();
  await Promise.all(
    Array.from({ length: 1000 }, (_, i) => {
      const finishedAt = new Date(now - (i % 30) * 60_000).toISOString();
      const body = {
        service: `svc-${i % 20}`,
        environment: 'production',
        status: 'success',
        startedAt: new Date(now - 3_600_000).toISOString(),
        finishedAt,
        id: `burst-${i}`,
      };
      return handle({
        data: Buffer.from(JSON.stringify(body)),
        attributes: {
          source: 'ci',
          eventType: 'deployment',
          deliveryId: body.id,
          receivedAt: new Date().toISOString(),
        },
      });
    }),
  );
  const requests = dd.attempts - before;
  const byPath = new Map<string, number>();
  for (const r of dd.accepted.slice(-requests)) byPath.set(r.path, (byPath.get(r.path) ?? 0) + 1);
  rows.push([
    'Datadog requests per 1,000 production deploys in a burst',
    `${requests}: ${[...byPath].map(([path, count]) => `${count} ${path}`).join(', ')}`,
  ]);
  await store.close();
}

// ---- end to end, embedded -----------------------------------------------------------------------
{
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'devstats-e2e-bench-'));
  const child = spawn(
    process.execPath,
    [
      'node_modules/@google-cloud/functions-framework/build/src/main.js',
      '--target=ingest',
      '--source=dist/functions/index.js',
    ],
    {
      env: {
        ...process.env,
        PORT: String(port),
        NODE_ENV: 'production',
        DEPLOY_WEBHOOK_TOKEN: 'bench',
        DD_API_KEY: 'bench',
        DD_API_URL: dd.url,
        DEVSTATS_DATA_DIR: dataDir,
        DEVSTATS_STORE: 'sqlite',
        DEVSTATS_BUS: 'memory',
      },
      stdio: 'ignore',
    },
  );
  for (;;) {
    try {
      await fetch(`http://127.0.0.1:${port}/healthz`);
      break;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  const before = dd.bodies('/api/v2/dora/deployment').length;
  let n = 0;
  const started = new Date();
  const result = await autocannon({
    url: `http://127.0.0.1:${port}/deployments`,
    method: 'POST',
    connections: 16,
    duration: Number(process.env.BENCH_DURATION_S ?? 10),
    headers: { 'content-type': 'application/json', authorization: 'Bearer bench' },
    requests: [
      {
        setupRequest: (request) => {
          n++;
          const finishedAt = new Date(started.getTime() - (n % 50) * 1000).toISOString();
          return {
            ...request,
            body: JSON.stringify({
              service: `svc-${n % 10}`,
              environment: 'production',
              status: 'success',
              startedAt: new Date(started.getTime() - 600_000).toISOString(),
              finishedAt,
              id: `e2e-${n}`,
            }),
          };
        },
      },
    ],
  });
  await new Promise((resolve) => setTimeout(resolve, 1000)); // the last exports
  const exported = dd.bodies('/api/v2/dora/deployment').length - before;
  rows.push([
    'deliveries/s end to end in embedded mode (ingest → process → SQLite → local Datadog), 16 connections',
    `${result.requests.average.toFixed(0)} accepted/s; ${exported} of ${result['2xx']} exported within 1 s of the end; ${result.non2xx} non-2xx`,
  ]);
  child.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
}

await dd.stop();
console.log('\n# export benchmark\n\n| figure | value |\n|---|---|');
for (const [figure, value] of rows) console.log(`| ${figure} | ${value} |`);
