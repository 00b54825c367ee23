import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MemoryBus } from '../../shared/bus/memory.ts';
import { main as cli } from '../../shared/cli/main.ts';
import { memoryLogger } from '../../shared/log.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import {
  circleciWorkflowCompleted,
  githubExamples,
  spinnakerPipelineEvent,
  terraformNotification,
} from '../support/fixtures.ts';
import { type RunningServer, startIngestServer } from '../support/ingest-server.ts';
import { everySource, sign } from '../support/signing.ts';

const SECRET = 'e2e';
const REPO = 'acme/billing';
const sha = (n: number) => n.toString(16).padStart(40, 'a');

function githubPushBody(before: string, after: string, commits: Array<[string, string]>, repo = REPO) {
  return {
    ref: 'refs/heads/main',
    before,
    after,
    repository: { full_name: repo, name: repo.split('/')[1], pushed_at: 1763800000 },
    commits: commits.map(([id, timestamp]) => ({ id, timestamp, author: { name: 'Bob', username: 'bob' } })),
    head_commit: commits.length > 0 ? { id: after } : null,
  };
}

/** The deliveries of one story, in arrival order: [path, event, body]. */
function story(): Array<[string, string, unknown]> {
  const pr = githubExamples('pull_request').find((p) => p.action === 'closed')!;
  Object.assign(pr, { number: 12, repository: { ...(pr.repository as object), full_name: REPO } });
  Object.assign(pr.pull_request as object, {
    merged: true,
    created_at: '2026-11-19T12:00:00Z',
    merged_at: '2026-11-20T09:00:00Z',
    merge_commit_sha: sha(3),
  });
  const status = githubExamples('deployment_status')[0]!;
  Object.assign(status.deployment as object, { id: 9001, sha: sha(3), created_at: '2026-11-20T10:00:00Z' });
  Object.assign(status.deployment_status as object, { created_at: '2026-11-20T10:10:00Z', environment: 'production' });
  Object.assign(status.repository as object, { full_name: REPO, name: 'billing' });
  return [
    // The first production deploy of billing, at c0, by a CI job.
    [
      '/deployments',
      '',
      {
        service: 'billing',
        environment: 'production',
        status: 'success',
        startedAt: '2026-11-19T09:00:00Z',
        finishedAt: '2026-11-19T09:05:00Z',
        commitSha: sha(0),
        repository: REPO,
        id: 'ci-1',
      },
    ],
    // Three pushes, one commit each (commit times in local offsets), then a merged PR whose merge commit is c3.
    ['/github', 'push', githubPushBody(sha(0), sha(1), [[sha(1), '2026-11-20T06:00:00+01:00']])],
    ['/github', 'push', githubPushBody(sha(1), sha(2), [[sha(2), '2026-11-20T02:30:00-05:00']])],
    ['/github', 'push', githubPushBody(sha(2), sha(3), [[sha(3), '2026-11-20T09:00:00Z']])],
    ['/github', 'pull_request', pr],
    // GitHub's deployment of c3 to production: ships c1, c2 and c3.
    ['/github', 'deployment_status', status],
    // Deploy before push: checkout's deploy arrives before the push that introduced its sha.
    [
      '/deployments',
      '',
      {
        service: 'checkout',
        environment: 'prod',
        status: 'success',
        startedAt: '2026-11-20T11:00:00Z',
        finishedAt: '2026-11-20T11:05:00Z',
        commitSha: sha(100),
        repository: 'acme/checkout',
        id: 'ci-2',
      },
    ],
    ['/github', 'push', githubPushBody(sha(99), sha(100), [[sha(100), '2026-11-20T10:00:00Z']], 'acme/checkout')],
    ['/spinnaker', '', spinnakerPipelineEvent('orca:pipeline:failed', 'CANCELED')],
    ['/terraform', '', terraformNotification('run:errored', 'errored')],
    // CircleCI retries a delivery with the same event id: stored once (the story is sent twice).
    ['/circleci', '', circleciWorkflowCompleted('deploy-production', 'success')],
  ];
}

describe('embedded mode end to end: signed webhooks → ingest → process → devstats events', () => {
  let dataDir: string;
  let store: SqliteStore;
  let bus: MemoryBus;
  let server: RunningServer;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'devstats-e2e-'));
    store = new SqliteStore(join(dataDir, 'devstats.sqlite'));
    const logger = memoryLogger();
    bus = new MemoryBus({ logger, retryDelayMs: 1 });
    const processMessage = createProcessor({ store, settings: parseSettings({}), logger });
    bus.subscribe('devstats-raw', async (delivery) => {
      await processMessage(delivery);
    });
    server = await startIngestServer({
      config: {
        maxBodyBytes: 26_214_400,
        secrets: everySource([SECRET]),
        insecureDev: false,
        rawTopic: 'devstats-raw',
        projectId: undefined,
      },
      bus,
      logger,
    });
  });
  after(async () => {
    await server.close();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function deliver(deliveries: Array<[string, string, unknown]>, round: number): Promise<void> {
    for (const [index, [path, event, payload]] of deliveries.entries()) {
      const body = JSON.stringify(payload);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (path === '/github') {
        Object.assign(headers, {
          'x-github-event': event,
          // GitHub's redelivery keeps the delivery id; a new delivery of the same fact does not.
          'x-github-delivery': `delivery-${index}-${round}`,
          'x-hub-signature-256': sign.github(body, SECRET),
        });
      } else if (path === '/terraform') {
        headers['x-tfe-notification-signature'] = sign.terraform(body, SECRET);
      } else if (path === '/circleci') {
        headers['circleci-signature'] = `v1=${sign.github(body, SECRET).slice('sha256='.length)}`;
      } else {
        headers.authorization = sign.bearer(SECRET);
      }
      const response = await fetch(server.url + path, { method: 'POST', headers, body });
      assert.equal(response.status, 202, `${path} ${event}: ${await response.text()}`);
      await bus.drain();
    }
  }

  async function eventsJson(): Promise<Array<Record<string, unknown>>> {
    const lines: string[] = [];
    assert.equal(await cli(['events', '--json'], { DEVSTATS_DATA_DIR: dataDir }, (l) => lines.push(l)), 0);
    return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  test('each fact is stored once; sending everything again changes nothing', async () => {
    await deliver(story(), 1);
    const first = await eventsJson();
    const ids = first.map((e) => e.id);
    assert.equal(new Set(ids).size, ids.length, 'no id twice');
    assert.deepEqual(
      first.filter((e) => e.kind === 'deploy').map((e) => [e.id, e.service, e.environment, e.status]),
      [
        ['spinnaker:01JD7Y3K3M5B9X2Q8W4T6R1N0P', 'checkout', 'production', 'cancelled'],
        ['ci:billing:ci-1', 'billing', 'production', 'success'],
        ['github:9001', 'billing', 'production', 'success'],
        ['ci:checkout:ci-2', 'checkout', 'production', 'success'],
        ['circleci:fda08377-fe7e-46b1-8992-3a7aaecac9c3', 'payments-api', 'production', 'success'],
        ['terraform:run-FwnENkvDnrpyFC7M', 'checkout', 'production', 'failure'],
      ],
    );
    const changes = first.filter((e) => e.kind !== 'deploy').map((e) => e.id);
    assert.deepEqual(
      changes.sort(),
      [
        ...['acme/billing@', 'acme/checkout@'].flatMap((r) =>
          (r === 'acme/billing@' ? [1, 2, 3] : [100]).map((n) => r + sha(n)),
        ),
        `${REPO}#12`,
        `${REPO}:main:${sha(0)}..${sha(1)}`,
        `${REPO}:main:${sha(1)}..${sha(2)}`,
        `${REPO}:main:${sha(2)}..${sha(3)}`,
        `acme/checkout:main:${sha(99)}..${sha(100)}`,
      ].sort(),
    );
    await deliver(story(), 2);
    assert.deepEqual(await eventsJson(), first);
    assert.equal(bus.deadLetters.length, 0);
  });

  test('the deploy of c3 shipped three pushed commits: three lead times, the merge commit with its PR times', async () => {
    const shipped = await store.shippedBy('github:9001');
    assert.deepEqual(
      shipped.map((s) => [
        s.sha,
        s.via,
        s.committedAt,
        s.leadTimeSeconds,
        s.pullRequest?.reviewSeconds,
        s.pullRequest?.timeToDeploySeconds,
      ]),
      [
        // deployed 2026-11-20T10:10:00Z
        [sha(1), 'push', '2026-11-20T05:00:00.000Z', 5 * 3600 + 600, undefined, undefined],
        [sha(2), 'push', '2026-11-20T07:30:00.000Z', 2.5 * 3600 + 600, undefined, undefined],
        [sha(3), 'push', '2026-11-20T09:00:00.000Z', 3600 + 600, 21 * 3600, 3600 + 600],
      ],
    );
    // The first deploy shipped the push that introduced c0: none was recorded, so it still waits.
    assert.deepEqual(await store.shippedBy('ci:billing:ci-1'), []);
  });

  test('a deploy that arrived before its push is resolved when the push arrives', async () => {
    const shipped = await store.shippedBy('ci:checkout:ci-2');
    assert.deepEqual(
      shipped.map((s) => [s.sha, s.leadTimeSeconds]),
      [[sha(100), 3900]],
    );
  });
});
