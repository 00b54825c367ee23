import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { BusMessage } from '../../shared/bus/bus.ts';
import { CLAIM_MS, EXPORT_BUDGET_MS, Exporter } from '../../shared/export/exporter.ts';
import { memoryLogger } from '../../shared/log.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { rollup } from '../../shared/pipeline/rollup.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { createDatadogSink } from '../../shared/export/datadog-sink.ts';
import { policyFetch } from '../../shared/export/datadog-api.ts';
import { DatadogUnavailable, exportDeadline } from '../../shared/export/sink.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { FakeDatadog } from '../support/datadog-server.ts';

const NOW = new Date('2026-11-22T12:00:00.000Z');
const REPO = 'acme/billing';
const sha = (n: number) => n.toString(16).padStart(40, 'c');
const s = (iso: string) => Date.parse(iso) / 1000;
const settings = parseSettings({ teams: { payments: { services: ['billing'], repositories: [REPO] } } });

function ci(body: Record<string, unknown>, receivedAt = '2026-11-22T11:59:00.000Z'): BusMessage {
  return {
    data: Buffer.from(JSON.stringify({ environment: 'production', status: 'success', repository: REPO, ...body })),
    attributes: { source: 'ci', eventType: 'deployment', deliveryId: String(body.id), receivedAt },
  };
}
function push(before: number, after: number, timestamp: string): BusMessage {
  const body = {
    ref: 'refs/heads/main',
    before: sha(before),
    after: sha(after),
    repository: { full_name: REPO, pushed_at: s(timestamp) + 60 },
    commits: [{ id: sha(after), timestamp, author: { name: 'Bob', username: 'bob' } }],
  };
  return {
    data: Buffer.from(JSON.stringify(body)),
    attributes: {
      source: 'github',
      eventType: 'push',
      deliveryId: `p${after}`,
      receivedAt: '2026-11-22T11:59:00.000Z',
    },
  };
}
const mergedPullRequest: BusMessage = {
  data: Buffer.from(
    JSON.stringify({
      action: 'closed',
      number: 12,
      repository: { full_name: REPO },
      pull_request: {
        user: { login: 'carol' },
        created_at: '2026-11-22T09:00:00Z',
        merged: true,
        merged_at: '2026-11-22T11:10:00Z',
        merge_commit_sha: sha(3),
        base: { ref: 'main' },
        head: { sha: sha(99) },
        commits: 3,
      },
    }),
  ),
  attributes: {
    source: 'github',
    eventType: 'pull_request',
    deliveryId: 'pr12',
    receivedAt: '2026-11-22T11:59:00.000Z',
  },
};

/** The story, in arrival order. */
const story: BusMessage[] = [
  ci({
    service: 'billing',
    id: 'ci-0',
    commitSha: sha(0),
    startedAt: '2026-11-22T11:28:00Z',
    finishedAt: '2026-11-22T11:30:00Z',
  }),
  push(0, 1, '2026-11-22T10:00:00Z'),
  push(1, 2, '2026-11-22T10:30:00Z'),
  push(2, 3, '2026-11-22T11:00:00Z'),
  mergedPullRequest,
  ci({
    service: 'billing',
    id: 'ci-1',
    status: 'failure',
    commitSha: sha(3),
    startedAt: '2026-11-22T11:38:00Z',
    finishedAt: '2026-11-22T11:40:00Z',
  }),
  ci({
    service: 'billing',
    id: 'ci-2',
    commitSha: sha(3),
    startedAt: '2026-11-22T11:47:00Z',
    finishedAt: '2026-11-22T11:50:00Z',
  }),
  // Two deploys in the same second both count.
  ci({
    service: 'search',
    id: 'ci-s1',
    repository: 'acme/search',
    startedAt: '2026-11-22T11:45:00Z',
    finishedAt: '2026-11-22T11:45:10.000Z',
  }),
  ci({
    service: 'search',
    id: 'ci-s2',
    repository: 'acme/search',
    startedAt: '2026-11-22T11:45:00Z',
    finishedAt: '2026-11-22T11:45:10.500Z',
  }),
  // Older than Datadog takes points for: DORA record and event only.
  ci({ service: 'checkout', id: 'ci-old', startedAt: '2026-11-22T08:55:00Z', finishedAt: '2026-11-22T09:00:00Z' }),
  // Dated 30 minutes after its receipt: stored, never exported.
  ci(
    { service: 'checkout', id: 'ci-future', startedAt: '2026-11-22T12:25:00Z', finishedAt: '2026-11-22T12:30:00Z' },
    '2026-11-22T12:00:00.000Z',
  ),
];

interface Harness {
  dd: FakeDatadog;
  store: SqliteStore;
  processMessage: (m: BusMessage) => Promise<unknown>;
  exporter: Exporter;
  sink: ReturnType<typeof createDatadogSink>;
}

async function harness(options: { timeoutMs?: number; retries?: number } = {}): Promise<Harness> {
  const dd = await new FakeDatadog().start();
  const logger = memoryLogger();
  const store = new SqliteStore(':memory:');
  const sink = dd.sink(logger, { timeoutMs: options.timeoutMs ?? 2000, retries: options.retries ?? 3 });
  const exporter = new Exporter({ store, sink, settings, logger, now: () => NOW });
  return {
    dd,
    store,
    sink,
    exporter,
    processMessage: createProcessor({ store, settings, logger, exporter, now: () => NOW }),
  };
}

type SeriesBody = {
  series: Array<{ metric: string; type: string; interval?: number; points: Array<[number, number]>; tags: string[] }>;
};
type DistributionBody = { series: Array<{ metric: string; points: Array<[number, number[]]>; tags: string[] }> };

/** Count and gauge points as Datadog keeps them: the last value per (metric, tags, timestamp). */
function seriesAsKept(dd: FakeDatadog): Map<string, { type: string; interval?: number; value: number }> {
  const kept = new Map<string, { type: string; interval?: number; value: number }>();
  for (const body of dd.bodies('/api/v1/series') as SeriesBody[]) {
    for (const series of body.series) {
      for (const [timestamp, value] of series.points) {
        kept.set(
          `${series.metric} ${[...series.tags].sort().join(',')} @${new Date(timestamp * 1000).toISOString().slice(11, 16)}`,
          {
            type: series.type,
            ...(series.interval ? { interval: series.interval } : {}),
            value,
          },
        );
      }
    }
  }
  return kept;
}

/** Distribution values as Datadog adds them up: every value sent, per (metric, tags). */
function distributionValues(dd: FakeDatadog, metric: string): Record<string, number[]> {
  const values: Record<string, number[]> = {};
  for (const body of dd.bodies('/api/v1/distribution_points') as DistributionBody[]) {
    for (const series of body.series.filter((x) => x.metric === metric)) {
      const key = [...series.tags].sort().join(',');
      for (const [, v] of series.points) (values[key] ??= []).push(...v);
    }
  }
  for (const key of Object.keys(values)) values[key]!.sort((a, b) => a - b);
  return values;
}

describe('export to Datadog (the real client against a local Datadog)', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
    // Every delivery three times, as Pub/Sub may redeliver.
    for (const message of story) for (let i = 0; i < 3; i++) await h.processMessage(message);
  });
  after(async () => {
    await h.dd.stop();
    await h.store.close();
  });

  const billing = 'env:production,service:billing,team:payments';

  test('devstats.deploys: one count per minute bucket, interval 60, two deploys in one second both counted', () => {
    assert.deepEqual(Object.fromEntries(seriesAsKept(h.dd)), {
      'devstats.deploys env:production,service:billing,source:ci,status:success,team:payments @11:30': {
        type: 'count',
        interval: 60,
        value: 1,
      },
      'devstats.deploys env:production,service:billing,source:ci,status:failure,team:payments @11:40': {
        type: 'count',
        interval: 60,
        value: 1,
      },
      'devstats.deploys env:production,service:billing,source:ci,status:success,team:payments @11:50': {
        type: 'count',
        interval: 60,
        value: 1,
      },
      'devstats.deploys env:production,service:search,source:ci,status:success,team:none @11:45': {
        type: 'count',
        interval: 60,
        value: 2,
      },
    });
  });

  test('lead time: the three pushed commits shipped by ci-2, once each despite three deliveries', () => {
    assert.deepEqual(distributionValues(h.dd, 'devstats.lead_time'), { [billing]: [3000, 4800, 6600] });
  });

  test('pull request review time and time to deploy, from the merge commit', () => {
    assert.deepEqual(distributionValues(h.dd, 'devstats.pr.review_time'), { [billing]: [7800] });
    assert.deepEqual(distributionValues(h.dd, 'devstats.pr.time_to_deploy'), { [billing]: [2400] });
  });

  test('time to restore: from the failure at 11:40 to the success at 11:50', () => {
    assert.deepEqual(distributionValues(h.dd, 'devstats.time_to_restore'), { [`cause:deploy,${billing}`]: [600] });
  });

  test('deploy duration per status; none for the old or the future deploy', () => {
    assert.deepEqual(distributionValues(h.dd, 'devstats.deploy.duration'), {
      'env:production,service:billing,status:failure,team:payments': [120],
      'env:production,service:billing,status:success,team:payments': [120, 180],
      'env:production,service:search,status:success,team:none': [10, 10.5],
    });
  });

  test('pipeline lag per source, once per exported deploy', () => {
    assert.deepEqual(distributionValues(h.dd, 'devstats.pipeline.lag'), { 'source:ci': [60, 60, 60, 60, 60, 60] });
  });

  test('one DORA deployment and one event per production deploy, with the deterministic id; the old one included, the future one not', () => {
    const dora = (
      h.dd.bodies('/api/v2/dora/deployment') as Array<{ data: { attributes: Record<string, unknown> } }>
    ).map((b) => b.data.attributes);
    // Datadog takes DORA ids of 16 characters or more: the short ones get a prefix.
    assert.deepEqual(dora.map((a) => a.id).sort(), [
      'ci:checkout:ci-old',
      'devstats:ci:billing:ci-0',
      'devstats:ci:billing:ci-1',
      'devstats:ci:billing:ci-2',
      'devstats:ci:search:ci-s1',
      'devstats:ci:search:ci-s2',
    ]);
    assert.deepEqual(
      dora.find((a) => a.id === 'devstats:ci:billing:ci-2'),
      {
        id: 'devstats:ci:billing:ci-2',
        service: 'billing',
        env: 'production',
        started_at: Date.parse('2026-11-22T11:47:00Z') * 1e6,
        finished_at: Date.parse('2026-11-22T11:50:00Z') * 1e6,
        git: { commit_sha: sha(3), repository_url: `https://github.com/${REPO}` },
        team: 'payments',
        // No version of its own: its sha, so Datadog's rollback detection (by version) sees what ours sees.
        version: sha(3),
      },
    );
    const events = h.dd.bodies('/api/v1/events') as Array<{
      aggregation_key: string;
      alert_type: string;
      date_happened: number;
      tags: string[];
    }>;
    assert.deepEqual(events.map((e) => e.aggregation_key).sort(), [
      'ci:billing:ci-0',
      'ci:billing:ci-1',
      'ci:billing:ci-2',
      'ci:checkout:ci-old',
      'ci:search:ci-s1',
      'ci:search:ci-s2',
    ]);
    assert.equal(events.find((e) => e.aggregation_key === 'ci:billing:ci-1')?.alert_type, 'error');
    assert.ok(
      events.every((e) => !e.tags.some((t) => t.includes('bob') || t.includes('carol'))),
      'no person in tags',
    );
  });

  test('requests carry the API key, and metric payloads are compressed', () => {
    assert.ok(h.dd.accepted.every((r) => r.headers['dd-api-key'] === 'test-key'));
    assert.ok(
      h.dd.accepted.filter((r) => r.path === '/api/v1/series').every((r) => r.headers['content-encoding'] === 'gzip'),
    );
  });

  test('nothing is left to export; a rollup sends no point twice', async () => {
    assert.deepEqual(await h.store.unexportedDeploys(10), []);
    assert.deepEqual(await h.store.unexportedShipped(10), []);
    const before = h.dd.bodies('/api/v1/distribution_points').length;
    await rollup({
      store: h.store,
      sink: h.sink,
      exporter: h.exporter,
      settings,
      logger: memoryLogger(),
      now: () => NOW,
    });
    assert.equal(h.dd.bodies('/api/v1/distribution_points').length, before);
  });
});

describe('Datadog faults: nothing lost, nothing counted twice', () => {
  const deploy = ci({
    service: 'billing',
    id: 'ci-f',
    startedAt: '2026-11-22T11:50:00Z',
    finishedAt: '2026-11-22T11:51:00Z',
  });
  const doraIds = (dd: FakeDatadog) =>
    (dd.bodies('/api/v2/dora/deployment') as Array<{ data: { attributes: { id: string } } }>).map(
      (b) => b.data.attributes.id,
    );

  test('500s are retried with backoff until Datadog takes the request', async () => {
    const h = await harness();
    try {
      h.dd.fail(2, { kind: 'status', status: 500 });
      await h.processMessage(deploy);
      assert.deepEqual(doraIds(h.dd), ['devstats:ci:billing:ci-f']);
      assert.equal(h.dd.attempts, h.dd.accepted.length + 2);
    } finally {
      await h.dd.stop();
    }
  });

  test('429 waits for X-RateLimit-Reset before the retry', async () => {
    const h = await harness();
    try {
      h.dd.fail(1, { kind: 'status', status: 429, headers: { 'x-ratelimit-reset': '1' } });
      const started = performance.now();
      await h.processMessage(deploy);
      assert.ok(performance.now() - started >= 1000, 'waited for the reset');
      assert.deepEqual(doraIds(h.dd), ['devstats:ci:billing:ci-f']);
    } finally {
      await h.dd.stop();
    }
  });

  test('a hanging Datadog times out, process throws (Pub/Sub redelivers); the redelivery exports it once', async () => {
    const h = await harness({ timeoutMs: 200, retries: 1 });
    try {
      // The count, the event and the DORA record go side by side: every attempt of each hangs.
      h.dd.fail(6, { kind: 'hang' });
      await assert.rejects(h.processMessage(deploy), DatadogUnavailable);
      assert.equal(await h.store.deployExported('ci:billing:ci-f'), false);
      await h.processMessage(deploy); // the redelivery
      await h.processMessage(deploy); // and one more
      assert.deepEqual(doraIds(h.dd), ['devstats:ci:billing:ci-f']);
      assert.equal(await h.store.deployExported('ci:billing:ci-f'), true);
    } finally {
      await h.dd.stop();
    }
  });

  test('deliveries handled together share series and distribution requests (batching)', async () => {
    const h = await harness();
    try {
      const burst = Array.from({ length: 50 }, (_, i) =>
        ci({
          service: 'billing',
          id: `burst-${i}`,
          startedAt: '2026-11-22T11:50:00Z',
          finishedAt: `2026-11-22T11:5${i % 10}:00Z`,
        }),
      );
      await Promise.all(burst.map((m) => h.processMessage(m)));
      assert.equal(doraIds(h.dd).length, 50);
      const seriesRequests = h.dd.bodies('/api/v1/series').length;
      const distributionRequests = h.dd.bodies('/api/v1/distribution_points').length;
      assert.ok(
        seriesRequests <= 5 && distributionRequests <= 5,
        `${seriesRequests} series and ${distributionRequests} distribution requests for 50 deploys`,
      );
      // Batched or not, the counts are exact: 5 deploys in each of the 10 minutes.
      const counts = (h.dd.bodies('/api/v1/series') as SeriesBody[]).flatMap((b) =>
        b.series.map((x) => x.points[0]![1]),
      );
      assert.equal(Math.max(...counts), 5);
    } finally {
      await h.dd.stop();
    }
  });

  test('two instances exporting the same deploy at once (process and rollup elsewhere): sent once', async () => {
    const h = await harness();
    try {
      // Stored but not exported yet, as when a process instance is mid-export.
      const store = h.store;
      await createProcessor({ store, settings, logger: memoryLogger(), now: () => NOW })(deploy);
      const other = new Exporter({ store, sink: h.sink, settings, logger: memoryLogger(), now: () => NOW });
      await Promise.all([h.exporter.retryPending(), other.retryPending(), h.exporter.retryPending()]);
      assert.deepEqual(doraIds(h.dd), ['devstats:ci:billing:ci-f']);
      const durations = (h.dd.bodies('/api/v1/distribution_points') as DistributionBody[]).flatMap((b) =>
        b.series.filter((x) => x.metric === 'devstats.deploy.duration'),
      );
      assert.equal(durations.length, 1);
    } finally {
      await h.dd.stop();
    }
  });

  test('400 for one item: it is parked with its reason, the others go on, and only replay tries it again', async () => {
    const h = await harness();
    try {
      const bad = ci({
        service: 'billing',
        id: 'ci-bad',
        startedAt: '2026-11-22T11:50:00Z',
        finishedAt: '2026-11-22T11:52:00Z',
      });
      h.dd.refuse((path, body) => path === '/api/v2/dora/deployment' && body.includes('ci-bad'), {
        kind: 'status',
        status: 400,
      });
      await h.processMessage(bad); // acknowledged: a redelivery would fail the same way
      const attempts = h.dd.attempts;
      await h.processMessage(deploy);
      assert.deepEqual(doraIds(h.dd), ['devstats:ci:billing:ci-f'], 'the other deploy is not blocked');
      assert.deepEqual(
        (await h.store.parkedExports(10)).map((p) => [p.kind, p.id, /400/.test(p.reason)]),
        [['deploy', 'ci:billing:ci-bad', true]],
      );
      // rollup's sweep leaves it parked and still publishes its gauges.
      await rollup({
        store: h.store,
        sink: h.sink,
        exporter: h.exporter,
        settings,
        logger: memoryLogger(),
        now: () => NOW,
      });
      assert.equal(
        h.dd.accepted.filter((r) => r.path === '/api/v2/dora/deployment' && JSON.stringify(r.body).includes('ci-bad'))
          .length,
        0,
      );
      assert.ok(h.dd.attempts > attempts);
      assert.ok(h.dd.bodies('/api/v1/series').length > 0);
      // Once Datadog takes it (the cause fixed), replay sends it.
      h.dd.clearRefusals();
      assert.equal(await h.store.unparkExports(), 1);
      await h.exporter.retryPending();
      assert.deepEqual(doraIds(h.dd).sort(), ['ci:billing:ci-bad', 'devstats:ci:billing:ci-f']);
    } finally {
      await h.dd.stop();
    }
  });

  test('an event that fails past the retries: the redelivery sends the rest, and the duration once', async () => {
    const h = await harness({ retries: 1 });
    try {
      h.dd.refuse((path) => path === '/api/v1/events', { kind: 'status', status: 503 });
      await assert.rejects(h.processMessage(deploy), DatadogUnavailable);
      h.dd.clearRefusals();
      await h.processMessage(deploy); // the redelivery
      const durations = (h.dd.bodies('/api/v1/distribution_points') as DistributionBody[])
        .flatMap((b) => b.series.filter((x) => x.metric === 'devstats.deploy.duration'))
        .flatMap((x) => x.points.flatMap(([, v]) => v));
      assert.deepEqual(durations, [60], 'never [60, 60]');
      assert.equal(h.dd.bodies('/api/v1/events').length, 1);
      assert.deepEqual(doraIds(h.dd), ['devstats:ci:billing:ci-f']);
    } finally {
      await h.dd.stop();
    }
  });

  test('an export stops retrying at its time budget, however long each request may take', async () => {
    const dd = await new FakeDatadog().start();
    try {
      dd.fail(100, { kind: 'hang' });
      const fetchWithPolicy = policyFetch({ timeoutMs: 60_000, retries: 10, backoffMs: 10, logger: memoryLogger() });
      const started = performance.now();
      await assert.rejects(
        exportDeadline.run(Date.now() + 400, () => fetchWithPolicy(`${dd.url}/api/v1/series`, { method: 'POST' })),
      );
      const took = performance.now() - started;
      assert.ok(took < 1500, `gave up after ${Math.round(took)} ms`);
    } finally {
      await dd.stop();
    }
  });

  test('a redelivery while the first export still runs sends nothing: the claim outlives the export budget', async () => {
    assert.ok(EXPORT_BUDGET_MS < CLAIM_MS, 'the claim outlives the export budget');
    const h = await harness({ timeoutMs: 300, retries: 0 });
    try {
      h.dd.refuse((path) => path === '/api/v1/events', { kind: 'hang' });
      const first = h.processMessage(deploy);
      await new Promise((resolve) => setTimeout(resolve, 100));
      await h.processMessage(deploy); // Pub/Sub redelivers while the first still waits on Datadog
      await assert.rejects(first, DatadogUnavailable);
      h.dd.clearRefusals();
      await h.exporter.retryPending();
      const durations = (h.dd.bodies('/api/v1/distribution_points') as DistributionBody[]).flatMap((b) =>
        b.series.filter((x) => x.metric === 'devstats.deploy.duration'),
      );
      assert.equal(durations.length, 1);
      assert.deepEqual(doraIds(h.dd), ['devstats:ci:billing:ci-f']);
    } finally {
      await h.dd.stop();
    }
  });
});
