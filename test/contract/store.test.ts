import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { Commit, Deploy, PullRequest, Push, ShippedChange } from '../../shared/events.ts';
import { FirestoreStore } from '../../shared/store/firestore.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import type { Store } from '../../shared/store/store.ts';
import { type Emulator, skipUnlessEmulator, startEmulator } from '../support/emulator.ts';

const REPO = 'acme/billing';

function deploy(overrides: Partial<Deploy> = {}): Deploy {
  return {
    kind: 'deploy',
    id: 'github:1',
    source: 'github',
    service: 'billing',
    environment: 'production',
    status: 'success',
    startedAt: '2026-11-20T10:00:00.000Z',
    finishedAt: '2026-11-20T10:05:00.000Z',
    commitSha: 'c3',
    repository: REPO,
    actor: 'alice',
    externalId: '1',
    ...overrides,
  };
}
const commit = (sha: string, timestamp: string): Commit => ({
  kind: 'commit',
  id: `${REPO}@${sha}`,
  repository: REPO,
  branch: 'main',
  sha,
  authorLogin: 'bob',
  authorName: 'Bob',
  timestamp,
  isBot: false,
});
const push = (before: string, after: string, shas: string[]): Push => ({
  kind: 'push',
  id: `${REPO}:main:${before}..${after}`,
  repository: REPO,
  branch: 'main',
  before,
  after,
  commitShas: shas,
  pushedAt: '2026-11-20T09:00:00.000Z',
});
const pullRequest: PullRequest = {
  kind: 'pull_request',
  id: `${REPO}#7`,
  repository: REPO,
  number: 7,
  authorLogin: 'carol',
  isBot: false,
  createdAt: '2026-11-19T09:00:00.000Z',
  mergedAt: '2026-11-20T08:00:00.000Z',
  mergeCommitSha: 'm7',
  baseRef: 'main',
  headSha: 'h7',
  commits: 2,
};
const shipped = (sha: string): ShippedChange => ({
  id: `github:1|${sha}`,
  deployId: 'github:1',
  service: 'billing',
  environment: 'production',
  repository: REPO,
  sha,
  via: 'push',
  committedAt: '2026-11-20T08:00:00.000Z',
  deployedAt: '2026-11-20T10:05:00.000Z',
  leadTimeSeconds: 7500,
});

/** One suite, every store: what `process` and the CLI rely on. */
function storeContract(name: string, open: () => Promise<Store>, options: { skip?: string } = {}): void {
  describe(`${name} store contract`, { skip: options.skip }, () => {
    async function withStore(work: (store: Store) => Promise<void>): Promise<void> {
      const store = await open();
      try {
        await work(store);
      } finally {
        await store.close();
      }
    }

    test('a deploy is stored once, however often it arrives', () =>
      withStore(async (store) => {
        assert.equal(await store.putDeploy(deploy(), { awaitingLeadTime: false }), 'created');
        assert.equal(await store.putDeploy(deploy(), { awaitingLeadTime: false }), 'unchanged');
        assert.deepEqual(await store.events({ kind: 'deploy' }), [deploy()]);
      }));

    test('a later terminal status of the same deployment updates it; an earlier one never undoes it', () =>
      withStore(async (store) => {
        const failed = deploy({ status: 'failure', finishedAt: '2026-11-20T10:05:00.000Z' });
        const succeeded = deploy({ status: 'success', finishedAt: '2026-11-20T10:09:00.000Z' });
        await store.putDeploy(failed, { awaitingLeadTime: false });
        assert.equal(await store.putDeploy(succeeded, { awaitingLeadTime: true }), 'updated');
        assert.equal(await store.putDeploy(failed, { awaitingLeadTime: false }), 'unchanged');
        assert.deepEqual(await store.events({ kind: 'deploy' }), [succeeded]);
        assert.deepEqual(await store.deploysAwaitingLeadTime(REPO), [succeeded]);
      }));

    test('commits, pull requests and pushes are created once and found by sha', () =>
      withStore(async (store) => {
        const changes = [commit('c1', '2026-11-20T08:00:00.000Z'), pullRequest, push('c0', 'c1', ['c1'])];
        for (const change of changes) assert.equal(await store.putChange(change), 'created');
        for (const change of changes) assert.equal(await store.putChange(change), 'unchanged');
        assert.deepEqual(await store.commit(REPO, 'c1'), changes[0]);
        assert.equal(await store.commit(REPO, 'nope'), undefined);
        assert.equal(await store.commit('other/repo', 'c1'), undefined);
        assert.deepEqual(await store.pullRequestByMergeSha(REPO, 'm7'), pullRequest);
        assert.deepEqual(await store.pushesTo(REPO, 'c1'), [changes[2]]);
        assert.deepEqual(await store.pushesTo(REPO, 'c0'), []);
      }));

    test('the previous successful deploy: same service and environment, successful, finished before', () =>
      withStore(async (store) => {
        const history = [
          deploy({ id: 'a', finishedAt: '2026-11-18T10:00:00.000Z', commitSha: 'a' }),
          deploy({ id: 'b', finishedAt: '2026-11-19T10:00:00.000Z', commitSha: 'b' }),
          deploy({ id: 'c', finishedAt: '2026-11-19T12:00:00.000Z', status: 'failure' }),
          deploy({ id: 'd', finishedAt: '2026-11-19T13:00:00.000Z', environment: 'staging' }),
          deploy({ id: 'e', finishedAt: '2026-11-19T14:00:00.000Z', service: 'checkout' }),
          deploy({ id: 'f', finishedAt: '2026-11-21T10:00:00.000Z' }),
        ];
        for (const d of history) await store.putDeploy(d, { awaitingLeadTime: false });
        const previous = await store.previousSuccessfulDeploy('billing', 'production', '2026-11-20T10:05:00.000Z');
        assert.equal(previous?.id, 'b');
        assert.equal(
          await store.previousSuccessfulDeploy('billing', 'production', '2026-11-18T10:00:00.000Z'),
          undefined,
        );
      }));

    test('shipped changes are recorded once and clear the wait', () =>
      withStore(async (store) => {
        await store.putDeploy(deploy(), { awaitingLeadTime: true });
        assert.deepEqual(
          (await store.deploysAwaitingLeadTime(REPO)).map((d) => d.id),
          ['github:1'],
        );
        await store.recordShipped('github:1', [shipped('c1'), shipped('c2')]);
        await store.recordShipped('github:1', [shipped('c1'), shipped('c2')]);
        assert.deepEqual(await store.shippedBy('github:1'), [shipped('c1'), shipped('c2')]);
        assert.deepEqual(await store.deploysAwaitingLeadTime(REPO), []);
        // The stored deploy is the same fact, without bookkeeping fields.
        assert.deepEqual(await store.events({ kind: 'deploy' }), [deploy()]);
      }));

    test('ranges: deploys (of a service), commits and merged pull requests in [from, to)', () =>
      withStore(async (store) => {
        const d1 = deploy({ id: 'd1', finishedAt: '2026-11-20T00:00:00.000Z' });
        const d2 = deploy({ id: 'd2', finishedAt: '2026-11-20T12:00:00.000Z', service: 'checkout' });
        const d3 = deploy({ id: 'd3', finishedAt: '2026-11-21T00:00:00.000Z' });
        for (const d of [d3, d1, d2]) await store.putDeploy(d, { awaitingLeadTime: false });
        assert.deepEqual(await store.deploysBetween('2026-11-20T00:00:00.000Z', '2026-11-21T00:00:00.000Z'), [d1, d2]);
        assert.deepEqual(
          await store.deploysBetween('2026-11-19T00:00:00.000Z', '2026-11-22T00:00:00.000Z', {
            service: 'billing',
            environment: 'production',
          }),
          [d1, d3],
        );
        assert.deepEqual(await store.deploy('d2'), d2);
        assert.equal(await store.deploy('nope'), undefined);
        const c = commit('c1', '2026-11-20T08:00:00.000Z');
        await store.putChange(c);
        await store.putChange(pullRequest);
        assert.deepEqual(await store.commitsBetween('2026-11-20T00:00:00.000Z', '2026-11-21T00:00:00.000Z'), [c]);
        assert.deepEqual(await store.commitsBetween('2026-11-20T08:00:00.001Z', '2026-11-21T00:00:00.000Z'), []);
        assert.deepEqual(await store.pullRequestsBetween('2026-11-20T00:00:00.000Z', '2026-11-21T00:00:00.000Z'), [
          pullRequest,
        ]);
      }));

    test('export state: unexported until marked; an updated deploy is exported again; shipped changes once', () =>
      withStore(async (store) => {
        await store.putDeploy(deploy({ status: 'failure' }), { awaitingLeadTime: false });
        assert.deepEqual(
          (await store.unexportedDeploys(10)).map((d) => d.id),
          ['github:1'],
        );
        await store.markDeployExported('github:1');
        assert.deepEqual(await store.unexportedDeploys(10), []);
        await store.putDeploy(deploy({ finishedAt: '2026-11-20T10:09:00.000Z' }), { awaitingLeadTime: true });
        assert.deepEqual(
          (await store.unexportedDeploys(10)).map((d) => d.status),
          ['success'],
        );

        await store.recordShipped('github:1', [shipped('c1'), shipped('c2')]);
        assert.deepEqual(
          (await store.unexportedShipped(10)).map((s) => s.id),
          ['github:1|c1', 'github:1|c2'],
        );
        await store.markShippedExported(['github:1|c1']);
        // Recorded again (a redelivery): c1 stays exported, so it is never sent twice.
        await store.recordShipped('github:1', [shipped('c1'), shipped('c2')]);
        assert.deepEqual(
          (await store.unexportedShipped(10)).map((s) => s.id),
          ['github:1|c2'],
        );
        assert.deepEqual(await store.shippedBy('github:1'), [shipped('c1'), shipped('c2')]);
        assert.deepEqual(await store.shippedBetween('2026-11-20T10:05:00.000Z', '2026-11-20T10:05:00.001Z'), [
          shipped('c1'),
          shipped('c2'),
        ]);
        assert.deepEqual(await store.shippedBetween('2026-11-20T10:05:00.001Z', '2026-11-21T00:00:00.000Z'), []);
      }));

    test('export claims: one exporter at a time, lapsing by themselves, given back after a failure', () =>
      withStore(async (store) => {
        const t = (minute: number) => new Date(Date.UTC(2026, 10, 20, 10, minute)).toISOString();
        await store.putDeploy(deploy(), { awaitingLeadTime: false });
        assert.equal(await store.claimDeployExport('github:1', t(0), t(2)), true);
        assert.equal(await store.claimDeployExport('github:1', t(1), t(3)), false, 'held by the first');
        assert.equal(await store.claimDeployExport('github:1', t(3), t(5)), true, 'the first claim lapsed');
        await store.releaseExportClaims(['github:1'], []);
        assert.equal(await store.claimDeployExport('github:1', t(3), t(5)), true, 'given back');
        await store.markDeployExported('github:1');
        assert.equal(await store.claimDeployExport('github:1', t(9), t(11)), false, 'exported already');
        assert.equal(await store.claimDeployExport('nope', t(9), t(11)), false);

        await store.recordShipped('github:1', [shipped('c1'), shipped('c2')]);
        assert.deepEqual(await store.claimShippedExport(['github:1|c1'], t(0), t(2)), ['github:1|c1']);
        assert.deepEqual(await store.claimShippedExport(['github:1|c1', 'github:1|c2'], t(1), t(3)), ['github:1|c2']);
        await store.releaseExportClaims([], ['github:1|c1']);
        await store.markShippedExported(['github:1|c2']);
        assert.deepEqual(await store.claimShippedExport(['github:1|c1', 'github:1|c2'], t(1), t(3)), ['github:1|c1']);
        // The claim is bookkeeping: the stored facts are unchanged.
        assert.deepEqual(await store.events({ kind: 'deploy' }), [deploy()]);
        assert.deepEqual(await store.shippedBy('github:1'), [shipped('c1'), shipped('c2')]);
      }));

    test('events: all kinds oldest first, filtered by kind and time', () =>
      withStore(async (store) => {
        const c1 = commit('c1', '2026-11-20T08:00:00.000Z');
        const c2 = commit('c2', '2026-11-20T09:30:00.000Z');
        const p = push('c0', 'c2', ['c1', 'c2']);
        await store.putChange(c2);
        await store.putChange(c1);
        await store.putChange(p);
        await store.putChange(pullRequest);
        await store.putDeploy(deploy(), { awaitingLeadTime: false });
        assert.deepEqual(
          (await store.events({})).map((e) => e.id),
          [pullRequest.id, c1.id, p.id, c2.id, 'github:1'],
        );
        assert.deepEqual(await store.events({ kind: 'commit', since: '2026-11-20T09:00:00.000Z' }), [c2]);
      }));
  });
}

storeContract('SQLite', () => Promise.resolve(new SqliteStore(':memory:')));

test('SQLite: every per-delivery lookup searches the index made for it, none scans', async () => {
  const store = new SqliteStore(':memory:');
  try {
    for (let i = 0; i < 200; i++) {
      await store.putChange(commit(`s${i}`, new Date(Date.UTC(2026, 10, 1) + i * 60_000).toISOString()));
      await store.putDeploy(
        deploy({ id: `d${i}`, finishedAt: new Date(Date.UTC(2026, 10, 1) + i * 60_000).toISOString() }),
        {
          awaitingLeadTime: i % 2 === 0,
        },
      );
    }
    const plans = store.explainLookups();
    const expected: Record<string, RegExp> = {
      previous:
        /^SEARCH events USING INDEX events_by_deploy \(kind=\? AND service=\? AND environment=\? AND status=\? AND time<\?\)/,
      bySha: /^SEARCH events USING INDEX events_by_sha \(kind=\? AND repository=\? AND sha=\?\)$/,
      awaiting: /^SEARCH events USING INDEX events_awaiting/,
      shippedBy: /^SEARCH shipped USING INDEX shipped_by_deploy/,
      get: /^SEARCH events USING INDEX sqlite_autoindex_events_1 \(id=\?\)$/,
    };
    for (const [lookup, plan] of Object.entries(plans)) assert.match(plan, expected[lookup]!, `${lookup}: ${plan}`);
  } finally {
    await store.close();
  }
});

const firestoreSkip = skipUnlessEmulator('firestore');
let firestore: Emulator | undefined;
describe('Firestore emulator', { skip: firestoreSkip }, () => {
  before(async () => {
    firestore = await startEmulator('firestore');
    process.env.FIRESTORE_EMULATOR_HOST = firestore.host;
  });
  after(async () => {
    await firestore?.stop();
    delete process.env.FIRESTORE_EMULATOR_HOST;
  });
  // Each test gets a project of its own: a clean database on the same emulator.
  storeContract('Firestore', () => FirestoreStore.connect(`devstats-${randomUUID().slice(0, 8)}`));
});
