/**
 * process: deliveries per second into the SQLite store and into the Firestore emulator, and the
 * cost of normalisation alone beside JSON.parse of the same bytes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BusMessage } from '../shared/bus/bus.ts';
import { createLogger } from '../shared/log.ts';
import { Exporter } from '../shared/export/exporter.ts';
import { createProcessor } from '../shared/pipeline/process.ts';
import { parseSettings } from '../shared/events/settings.ts';
import { normalizeDeployment } from '../shared/sources/deployments.ts';
import { normalizeGithub } from '../shared/sources/github.ts';
import type { Normalizer } from '../shared/sources/normalize.ts';
import { normalizeSpinnaker } from '../shared/sources/spinnaker.ts';
import { Firestore } from '@google-cloud/firestore';
import { FirestoreStore } from '../shared/store/firestore.ts';
import { SqliteStore } from '../shared/store/sqlite.ts';
import { type Store, StoreUnavailable } from '../shared/store/store.ts';
import { FakeDatadog } from '../test/support/datadog-server.ts';
import { emulatorAvailable, startEmulator } from '../test/support/emulator.ts';
import { ciDeployment, githubMergedPullRequest, githubPush, spinnakerPipelineEvent } from '../test/support/fixtures.ts';

const settings = parseSettings({});
const logger = createLogger(() => undefined);
const receivedAt = '2026-11-22T10:05:00.000Z';
const hex = (n: number, width = 40) => n.toString(16).padStart(width, '0');

/** A realistic stream: per round, a push of 3 commits, a merged PR, and a production deploy shipping them. */
function deliveries(rounds: number): BusMessage[] {
  const messages: BusMessage[] = [];
  const message = (source: string, eventType: string, body: unknown): BusMessage => ({
    data: Buffer.from(JSON.stringify(body)),
    attributes: { source, eventType, deliveryId: String(messages.length), receivedAt },
  });
  const template = githubPush();
  for (let round = 0; round < rounds; round++) {
    const shas = [1, 2, 3].map((i) => hex(round * 3 + i));
    const before = hex(round * 3);
    const commits = shas.map((id, i) => ({
      ...(template.commits as object[])[0],
      id,
      timestamp: `2026-11-20T0${i}:00:00-05:00`,
    }));
    messages.push(message('github', 'push', { ...template, before, after: shas[2], commits }));
    const pr = githubMergedPullRequest();
    Object.assign(pr, { number: round + 1 });
    Object.assign(pr.pull_request as object, { merge_commit_sha: shas[2] });
    messages.push(message('github', 'pull_request', pr));
    messages.push(
      message(
        'ci',
        'deployment',
        ciDeployment({
          id: `run-${round}`,
          commitSha: shas[2],
          repository: 'Codertocat/Hello-World',
          startedAt: new Date(Date.parse('2026-11-20T09:59:00Z') + round * 60_000).toISOString(),
          finishedAt: new Date(Date.parse('2026-11-20T10:00:00Z') + round * 60_000).toISOString(),
        }),
      ),
    );
  }
  return messages;
}

/** Firestore RPCs by method (BatchGetDocuments, RunQuery, Commit…), counted where the client sends them. */
const rpcs = new Map<string, number>();
{
  const proto = Firestore.prototype as unknown as Record<'request' | 'requestStream', (...args: unknown[]) => unknown>;
  for (const name of ['request', 'requestStream'] as const) {
    const send = proto[name];
    proto[name] = function (this: unknown, ...args: unknown[]) {
      const method = String(args[0]);
      rpcs.set(method, (rpcs.get(method) ?? 0) + 1);
      return send.apply(this, args);
    };
  }
}
const rpcCount = () => [...rpcs.values()].reduce((sum, n) => sum + n, 0);

/** Store calls (each at least one round trip), counted by wrapping every method of the store. */
function counting(store: Store): { store: Store; calls: () => number } {
  let calls = 0;
  const wrapped = new Proxy(store, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || property === 'close') return value;
      return (...args: unknown[]) => {
        calls++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: wrapped, calls: () => calls };
}

/** A delivery's kind, as the round trips are reported: push, PR, deploy (its lead times resolved). */
const kindOf = (m: BusMessage) =>
  ({ push: 'push', pull_request: 'PR', deployment: 'deploy with lead time' })[m.attributes.eventType ?? ''] ?? 'other';

interface Run {
  rate: number;
  /** Per kind: store calls and Firestore RPCs per delivery. */
  perKind: Map<string, { deliveries: number; calls: number; rpcs: number }>;
}

async function throughput(plain: Store, messages: BusMessage[]): Promise<Run> {
  const { store, calls } = counting(plain);
  const processMessage = createProcessor({ store, settings, logger });
  const perKind = new Map<string, { deliveries: number; calls: number; rpcs: number }>();
  const started = performance.now();
  for (const m of messages) {
    const [callsBefore, rpcsBefore] = [calls(), rpcCount()];
    await processMessage(m);
    const kind = perKind.get(kindOf(m)) ?? { deliveries: 0, calls: 0, rpcs: 0 };
    kind.deliveries++;
    kind.calls += calls() - callsBefore;
    kind.rpcs += rpcCount() - rpcsBefore;
    perKind.set(kindOf(m), kind);
  }
  return { rate: messages.length / ((performance.now() - started) / 1000), perKind };
}

/**
 * Deliveries per second with `concurrency` in flight, taken in arrival order: as a `process`
 * instance runs under Pub/Sub push (max_instance_request_concurrency, infra/functions.tf: 8).
 */
async function concurrentThroughput(
  store: Store,
  messages: BusMessage[],
  concurrency: number,
  exporter?: Exporter,
): Promise<{ rate: number; redelivered: number }> {
  const processMessage = createProcessor({ store, settings, logger, ...(exporter ? { exporter } : {}) });
  let next = 0;
  let redelivered = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < messages.length) {
        const message = messages[next++];
        if (message === undefined) continue;
        // A store failure throws, and Pub/Sub delivers the message again: so does this loop.
        for (let attempt = 1; ; attempt++) {
          try {
            await processMessage(message);
            break;
          } catch (error) {
            if (!(error instanceof StoreUnavailable) || attempt === 10) throw error;
            redelivered++;
          }
        }
      }
    }),
  );
  return { rate: messages.length / ((performance.now() - started) / 1000), redelivered };
}

const perDelivery = (run: Run, what: 'calls' | 'rpcs') =>
  [...run.perKind].map(([kind, k]) => `${kind} ${(k[what] / k.deliveries).toFixed(1)}`).join(', ');

const rows: Array<[string, string]> = [];

const dir = mkdtempSync(join(tmpdir(), 'devstats-bench-'));
const sqlite = new SqliteStore(process.env.BENCH_MEM ? ':memory:' : join(dir, 'bench.sqlite'));
const sqliteRun = await throughput(sqlite, deliveries(1000));
// The figure counts only if the work was done: the last deploy shipped its push's three commits.
const shippedByLast = (await sqlite.shippedBy('ci:billing:run-999')).length;
if (shippedByLast !== 3) throw new Error(`expected 3 shipped commits for the last deploy, got ${shippedByLast}`);
await sqlite.close();
rmSync(dir, { recursive: true, force: true });
rows.push([
  'deliveries/s through process, SQLite store (3,000: pushes, PRs, deploys with lead times)',
  sqliteRun.rate.toFixed(0),
]);
rows.push(['store calls per delivery, SQLite', perDelivery(sqliteRun, 'calls')]);

if (emulatorAvailable('firestore')) {
  const emulator = await startEmulator('firestore');
  process.env.FIRESTORE_EMULATOR_HOST = emulator.host;
  // The emulator is a JVM: its first few hundred requests are slow while it compiles itself. A warm-up
  // in a project of its own, so the figures below are of DevStats's round trips, not of that.
  const warmUp = await FirestoreStore.connect('devstats-bench-warm-up');
  const warmUpRun = await throughput(warmUp, deliveries(100));
  await warmUp.close();
  rows.push([
    'deliveries/s through process, Firestore emulator, its warm-up (300, one at a time)',
    warmUpRun.rate.toFixed(0),
  ]);
  const firestore = await FirestoreStore.connect('devstats-bench');
  rpcs.clear();
  const run = await throughput(firestore, deliveries(100));
  await firestore.close();
  rows.push(['deliveries/s through process, Firestore emulator, warmed up (300, one at a time)', run.rate.toFixed(0)]);
  rows.push(['store calls per delivery, Firestore', perDelivery(run, 'calls')]);
  rows.push(['Firestore round trips (RPCs) per delivery', perDelivery(run, 'rpcs')]);
  rows.push(['Firestore RPCs by method, all 300', [...rpcs].map(([method, n]) => `${method} ${n}`).join(', ')]);
  const concurrent = await FirestoreStore.connect('devstats-bench-concurrent');
  const concurrentRun = await concurrentThroughput(concurrent, deliveries(50), 8);
  // Counted only if right: deploys that arrived before their push settled once it came.
  const shippedLast = (await concurrent.shippedBy('ci:billing:run-49')).length;
  if (shippedLast !== 3)
    throw new Error(`concurrent: expected 3 shipped commits for the last deploy, got ${shippedLast}`);
  await concurrent.close();
  rows.push([
    'deliveries/s through process, Firestore emulator (150, 8 at a time as deployed)',
    `${concurrentRun.rate.toFixed(0)} (${concurrentRun.redelivered} redelivered after a transaction conflict)`,
  ]);
  // The same with the export to a local Datadog: the claims and marks of `process` as deployed.
  const dd = await new FakeDatadog().start();
  const sink = dd.sink(logger, { timeoutMs: 10_000, retries: 2, backoffMs: 100 });
  const exporting = await FirestoreStore.connect('devstats-bench-export');
  // Just after the last deploy of the stream, so Datadog takes every point.
  const exporter = new Exporter({
    store: exporting,
    sink,
    settings,
    logger,
    now: () => new Date('2026-11-20T10:50:00Z'),
  });
  const exportRun = await concurrentThroughput(exporting, deliveries(50), 8, exporter);
  const dora = dd.accepted.filter((r) => r.path === '/api/v2/dora/deployment').length;
  if (dora !== 50) throw new Error(`with the export: expected 50 DORA deployments, Datadog got ${dora}`);
  await exporting.close();
  await dd.stop();
  rows.push([
    'the same with the export to a local Datadog (claims, parts, in-doubt marks: as deployed)',
    `${exportRun.rate.toFixed(0)} (${exportRun.redelivered} redelivered)`,
  ]);
  await emulator.stop();
  delete process.env.FIRESTORE_EMULATOR_HOST;
} else {
  rows.push(['deliveries/s through process, Firestore emulator', 'not measured: emulator not installed']);
}

/** Normalisation alone (zod schema + mapping) beside JSON.parse of the same bytes, per event. */
function normalizationRatio(normalize: Normalizer, eventType: string, body: unknown): [number, number] {
  const bytes = Buffer.from(JSON.stringify(body));
  const parsed = JSON.parse(bytes.toString('utf8')) as unknown;
  const time = (work: () => void) => {
    for (let i = 0; i < 2000; i++) work(); // warm-up
    const started = performance.now();
    for (let i = 0; i < 20_000; i++) work();
    return ((performance.now() - started) / 20_000) * 1000;
  };
  const parse = time(() => {
    JSON.parse(bytes.toString('utf8'));
  });
  const normalizeOnly = time(() => normalize(parsed, eventType, { settings, receivedAt }));
  return [normalizeOnly, normalizeOnly / parse];
}
for (const [name, normalize, eventType, body] of [
  ['GitHub push (7.7 kB)', normalizeGithub, 'push', githubPush()],
  ['GitHub pull_request (merged)', normalizeGithub, 'pull_request', githubMergedPullRequest()],
  ['Spinnaker pipeline end', normalizeSpinnaker, '', spinnakerPipelineEvent()],
  ['CI /deployments', normalizeDeployment, 'deployment', ciDeployment()],
] as const) {
  const [micros, ratio] = normalizationRatio(normalize, eventType, body);
  rows.push([
    `normalisation of a ${name}: µs, and ÷ JSON.parse of its bytes`,
    `${micros.toFixed(1)} µs, ${ratio.toFixed(2)}×`,
  ]);
}

console.log('\n# process benchmark\n\n| figure | value |\n|---|---|');
for (const [figure, value] of rows) console.log(`| ${figure} | ${value} |`);
