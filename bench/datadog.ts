/**
 * Export to Datadog: requests per 1,000 deploys in a burst, and deliveries per second end to end in
 * embedded mode, against a local server that answers like Datadog (cold starts: bench/cold.ts).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Exporter } from '../shared/export/exporter.ts';
import { createLogger } from '../shared/log.ts';
import { createProcessor } from '../shared/pipeline/process.ts';
import { parseSettings } from '../shared/events/settings.ts';
import { SqliteStore } from '../shared/store/sqlite.ts';
import { FakeDatadog } from '../test/support/datadog-server.ts';
import { freePort } from '../test/support/ports.ts';
import { untilAnswering } from './support.ts';

const dd = await new FakeDatadog().start();
const rows: Array<[string, string]> = [];

// ---- batching -----------------------------------------------------------------------------------
{
  const logger = createLogger(() => undefined);
  const store = new SqliteStore(':memory:');
  const settings = parseSettings({});
  const sink = dd.sink(logger, { timeoutMs: 10_000, retries: 2, backoffMs: 100 });
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
  const metricRequests = (byPath.get('/api/v1/series') ?? 0) + (byPath.get('/api/v1/distribution_points') ?? 0);
  rows.push([
    'Datadog requests per 1,000 production deploys in a burst',
    `${requests}: ${[...byPath].map(([path, count]) => `${count} ${path}`).join(', ')}`,
  ]);
  rows.push([
    'of them metric requests (series and distribution points; aim ≤ 10; the DORA deployment and the event have no batch form)',
    String(metricRequests),
  ]);
  await store.close();
}

// ---- end to end, embedded -----------------------------------------------------------------------
/**
 * `npm start`'s embedded mode (ingest, the on-disk queue, process, SQLite, export, all in one
 * process) against a local Datadog in a process of its own. CI deploy notifications (each one a
 * DORA deployment, an event and a count) at fixed offered rates, then as fast as 16 connections
 * go: accepted per second, and receipt → Datadog latency (the 202's request sent → its DORA
 * deployment arriving), p50 and p99, over the deploys exported within 10 s of the end.
 */
{
  const ddChild = spawn(process.execPath, ['bench/datadog-child.ts'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const arrivals = new Map<string, number>();
  const ddUrl = await new Promise<string>((resolve) => {
    let buffered = '';
    ddChild.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        if (line.startsWith('http')) resolve(line);
        else if (line !== '') {
          const { id, at } = JSON.parse(line) as { id: string; at: number };
          arrivals.set(id, at);
        }
      }
    });
  });
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
        DD_API_URL: ddUrl,
        DEVSTATS_DATA_DIR: dataDir,
        DEVSTATS_STORE: 'sqlite',
      },
      stdio: 'ignore',
    },
  );
  await untilAnswering(port);
  const seconds = Number(process.env.BENCH_DURATION_S ?? 10);
  let run = 0;
  /** One load: `rate` requests/s offered (0: as fast as the connections go). */
  async function endToEnd(rate: number) {
    run++;
    const sent = new Map<string, number>();
    let n = 0;
    const started = Date.now();
    const result = await autocannon({
      url: `http://127.0.0.1:${port}/deployments`,
      method: 'POST',
      connections: 16,
      duration: seconds,
      ...(rate > 0 ? { overallRate: rate } : {}),
      headers: { 'content-type': 'application/json', authorization: 'Bearer bench' },
      requests: [
        {
          setupRequest: (request) => {
            n++;
            // A deploy a second per connection's turn, each service's spread over the last hour.
            const finishedAt = started - (n % 3600) * 1000;
            const id = `e2e-${run}-${n}`;
            sent.set(id, Date.now());
            return {
              ...request,
              body: JSON.stringify({
                service: `svc-${n % 10}`,
                environment: 'production',
                status: 'success',
                startedAt: new Date(finishedAt - 300_000).toISOString(),
                finishedAt: new Date(finishedAt).toISOString(),
                id,
              }),
            };
          },
        },
      ],
    });
    const ended = Date.now();
    const latencies = () =>
      [...sent].flatMap(([id, at]) => {
        const arrived = arrivals.get(`ci:svc-${Number(id.split('-')[2]) % 10}:${id}`);
        return arrived === undefined ? [] : [arrived - at];
      });
    while (latencies().length < sent.size && Date.now() - ended < 10_000)
      await new Promise((resolve) => setTimeout(resolve, 100));
    const sorted = latencies().sort((x, y) => x - y);
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
    rows.push([
      `end to end in embedded mode, ${rate > 0 ? `${rate} deliveries/s offered` : 'as fast as 16 connections go'}, ${seconds} s`,
      `${result.requests.average.toFixed(0)} accepted/s; receipt → Datadog p50 ${at(0.5).toFixed(0)} ms, p99 ${at(0.99).toFixed(0)} ms; ` +
        `${sorted.length} of the ${sent.size} sent exported within 10 s of the end; ${result.non2xx} non-2xx`,
    ]);
  }
  for (const rate of (process.env.BENCH_E2E_RATES ?? '100,200,400,0').split(',').map(Number)) await endToEnd(rate);
  child.kill('SIGTERM');
  ddChild.kill('SIGTERM');
  rmSync(dataDir, { recursive: true, force: true });
}

await dd.stop();
console.log('\n# export benchmark\n\n| figure | value |\n|---|---|');
for (const [figure, value] of rows) console.log(`| ${figure} | ${value} |`);
