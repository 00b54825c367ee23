import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { Change, Commit, Deploy, Incident, PullRequest, Push, ShippedChange } from '../../shared/events/model.ts';
import { FirestoreStore } from '../../shared/store/firestore.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { type PutResult, shipOrder, type Store } from '../../shared/store/store.ts';
import { skipUnlessEmulator, useFirestoreEmulator } from '../support/emulator.ts';

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
  forced: false,
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
const shipped = (sha: string, by: Deploy = deploy()): ShippedChange => ({
  id: `billing|${REPO}@${sha}`,
  deployId: by.id,
  service: 'billing',
  environment: 'production',
  repository: REPO,
  sha,
  via: 'push',
  committedAt: '2026-11-20T08:00:00.000Z',
  deployedAt: by.finishedAt,
  leadTimeSeconds: (Date.parse(by.finishedAt) - Date.parse('2026-11-20T08:00:00.000Z')) / 1000,
});

const C1 = `billing|${REPO}@c1`;
const C2 = `billing|${REPO}@c2`;

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

    // The event store (EventStore): facts stored once, found by key or index.
    describe('event store', () => {
      test("each source's last delivery: the later time stays, whatever the order noted", () =>
        withStore(async (store) => {
          assert.deepEqual(await store.sourcesSeen(), {});
          await store.noteSourceSeen('github', '2026-11-20T10:00:00.000Z');
          await store.noteSourceSeen('ci', '2026-11-20T09:00:00.000Z');
          await store.noteSourceSeen('github', '2026-11-20T08:00:00.000Z'); // a redelivery of an old one
          await store.noteSourceSeen('ci', '2026-11-20T11:00:00.000Z');
          assert.deepEqual(await store.sourcesSeen(), {
            ci: '2026-11-20T11:00:00.000Z',
            github: '2026-11-20T10:00:00.000Z',
          });
        }));

      test('a deploy is stored once, however often it arrives', () =>
        withStore(async (store) => {
          assert.deepEqual(await store.putDeploy(deploy(), { shipsChanges: false }), {
            result: 'created',
            before: undefined,
          });
          assert.deepEqual(await store.putDeploy(deploy(), { shipsChanges: false }), {
            result: 'unchanged',
            before: deploy(),
          });
          assert.deepEqual(await store.events({ kind: 'deploy' }), [deploy()]);
        }));

      test('an incident is stored once and merged from its updates, whatever their order', () =>
        withStore(async (store) => {
          const opened: Incident = {
            kind: 'incident',
            id: 'pagerduty:P1',
            source: 'pagerduty',
            service: 'checkout',
            environment: 'production',
            startedAt: '2026-11-20T10:00:00.000Z',
            state: 'open',
            updatedAt: '2026-11-20T10:00:00.000Z',
            title: 'Checkout is down',
          };
          const resolved: Incident = {
            ...opened,
            state: 'resolved',
            updatedAt: '2026-11-20T11:00:00.000Z',
            resolvedAt: '2026-11-20T11:00:00.000Z',
          };
          delete (resolved as { title?: string }).title;
          // The resolution first, then its trigger: the trigger adds what it knows, changes no state.
          assert.equal((await store.putIncident(resolved)).result, 'created');
          const merged = await store.putIncident(opened);
          assert.equal(merged.result, 'updated');
          const expected = { ...resolved, title: 'Checkout is down' };
          assert.deepEqual(merged.incident, expected);
          assert.equal((await store.putIncident(opened)).result, 'unchanged');
          assert.equal((await store.putIncident(resolved)).result, 'unchanged');
          assert.deepEqual(await store.incident('pagerduty:P1'), expected);
          assert.deepEqual(await store.incidentsBetween('2026-11-20T00:00:00.000Z', '2026-11-21T00:00:00.000Z'), [
            expected,
          ]);
          assert.deepEqual(await store.incidentsBetween('2026-11-21T00:00:00.000Z', '2026-11-22T00:00:00.000Z'), []);
          assert.deepEqual(await store.events({ kind: 'incident' }), [expected]);
        }));

      test('a later terminal status of the same deployment updates it; an earlier one never undoes it', () =>
        withStore(async (store) => {
          const failed = deploy({ status: 'failure', finishedAt: '2026-11-20T10:05:00.000Z' });
          const succeeded = deploy({ status: 'success', finishedAt: '2026-11-20T10:09:00.000Z' });
          await store.putDeploy(failed, { shipsChanges: false });
          assert.deepEqual(await store.putDeploy(succeeded, { shipsChanges: true }), {
            result: 'updated',
            before: failed,
          });
          assert.deepEqual(await store.putDeploy(failed, { shipsChanges: false }), {
            result: 'unchanged',
            before: succeeded,
          });
          assert.deepEqual(await store.events({ kind: 'deploy' }), [succeeded]);
          assert.deepEqual(await store.previousShippingDeploy('billing', '9'), succeeded, 'ships since the update');
        }));

      test('putChanges in any batches leaves the results and the stored changes of one putChange after another (property)', async () => {
        const change = fc.oneof(
          fc
            .record({
              sha: fc.constantFrom('c1', 'c2', 'c3'),
              branch: fc.constantFrom('main', 'feature'),
              hour: fc.integer({ min: 1, max: 3 }),
              parents: fc.option(fc.constantFrom(['c0'], ['c1', 'c2']), { nil: undefined }),
            })
            .map(({ sha, branch, hour, parents }): Change => ({
              ...commit(sha, `2026-11-20T0${hour}:00:00.000Z`),
              branch,
              ...(parents === undefined ? {} : { parents: [...parents] }),
            })),
          fc
            .record({
              after: fc.constantFrom('c2', 'c3'),
              shas: fc.subarray(['c1', 'c2', 'c3'], { minLength: 1 }),
              forced: fc.boolean(),
            })
            .map(({ after, shas, forced }): Change => ({ ...push('c0', after, shas), forced })),
          fc.constantFrom<Change>(pullRequest, { ...pullRequest, id: `${REPO}#8`, number: 8, mergeCommitSha: 'm8' }),
        );
        const puts = fc.array(fc.record({ change, onDefaultBranch: fc.boolean() }), { minLength: 1, maxLength: 12 });
        await fc.assert(
          fc.asyncProperty(
            puts,
            fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 12 }),
            async (sequence, cuts) => {
              const one = await open();
              const batched = await open();
              try {
                const expected: PutResult[] = [];
                for (const { change: c, onDefaultBranch } of sequence)
                  expected.push(await one.putChange(c, { onDefaultBranch }));
                const results: PutResult[] = [];
                let at = 0;
                for (const size of [...cuts, sequence.length]) {
                  if (at >= sequence.length) break;
                  results.push(...(await batched.putChanges(sequence.slice(at, at + size))));
                  at += size;
                }
                assert.deepEqual(results, expected);
                for (const kind of ['commit', 'push', 'pull_request'] as const)
                  assert.deepEqual(await batched.events({ kind }), await one.events({ kind }), kind);
              } finally {
                await one.close();
                await batched.close();
              }
            },
          ),
          { numRuns: name === 'SQLite' ? 200 : 25 },
        );
      });

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
          // Batched lookups find what is there, and only that.
          const c2 = commit('c2', '2026-11-20T08:30:00.000Z');
          await store.putChange(c2);
          assert.deepEqual((await store.commits(REPO, ['c2', 'nope', 'c1'])).map((c) => c.sha).sort(), ['c1', 'c2']);
          assert.deepEqual(await store.pullRequestsByMergeShas(REPO, ['c1', 'm7']), [pullRequest]);
          assert.deepEqual(await store.pullRequestsByMergeShas('other/repo', ['m7']), []);
        }));

      test("a repository's history in bulk: commits before a time, newest first; pushes and shipping deploys since one", () =>
        withStore(async (store) => {
          const c1 = commit('c1', '2026-11-20T08:00:00.000Z');
          const c2 = commit('c2', '2026-11-20T09:00:00.000Z');
          const c3 = commit('c3', '2026-11-20T10:00:00.000Z');
          const elsewhere = { ...commit('c4', '2026-11-20T09:30:00.000Z'), repository: 'other/repo' };
          elsewhere.id = `other/repo@c4`;
          for (const c of [c2, elsewhere, c3, c1]) await store.putChange(c);
          assert.deepEqual(
            (await store.commitsBefore(REPO, '2026-11-20T09:00:00.000Z', 10)).map((c) => c.sha),
            ['c2', 'c1'],
          );
          assert.deepEqual(
            (await store.commitsBefore(REPO, '2026-11-21T00:00:00.000Z', 2)).map((c) => c.sha),
            ['c3', 'c2'],
          );
          const early = { ...push('c0', 'c1', ['c1']), pushedAt: '2026-11-20T08:05:00.000Z' };
          const late = { ...push('c2', 'c3', ['c3']), pushedAt: '2026-11-20T10:05:00.000Z' };
          for (const p of [late, early]) await store.putChange(p);
          assert.deepEqual(
            (await store.pushesSince(REPO, '2026-11-20T08:05:00.000Z')).map((p) => p.id),
            [early.id, late.id],
          );
          assert.deepEqual(
            (await store.pushesSince(REPO, '2026-11-20T09:00:00.000Z')).map((p) => p.id),
            [late.id],
          );
          assert.deepEqual(await store.pushesSince('other/repo', '2026-11-01T00:00:00.000Z'), []);
          const shipping = deploy({ id: 's', finishedAt: '2026-11-20T10:10:00.000Z', commitSha: 'c3' });
          const older = deploy({ id: 'o', finishedAt: '2026-11-19T10:10:00.000Z', commitSha: 'c1' });
          const notShipping = deploy({ id: 'n', finishedAt: '2026-11-20T10:20:00.000Z', commitSha: 'c3' });
          await store.putDeploy(shipping, { shipsChanges: true });
          await store.putDeploy(older, { shipsChanges: true });
          await store.putDeploy(notShipping, { shipsChanges: false });
          assert.deepEqual(
            (await store.shippingDeploysSince(REPO, '2026-11-20T00:00:00.000Z')).map((d) => d.id),
            ['s'],
          );
        }));

      test('pushes to one sha (two branches) are listed alike by every store: by pushedAt, then id', () =>
        withStore(async (store) => {
          const onMain = push('c0', 'c2', ['c1', 'c2']);
          const onFeature = { ...push('0000', 'c2', ['c1', 'c2']), id: `${REPO}:feature:0000..c2`, branch: 'feature' };
          const later = {
            ...push('c1', 'c2', ['c2']),
            id: `${REPO}:hotfix:c1..c2`,
            pushedAt: '2026-11-20T09:30:00.000Z',
          };
          for (const p of [later, onMain, onFeature]) await store.putChange(p);
          assert.deepEqual(
            (await store.pushesTo(REPO, 'c2')).map((p) => p.id),
            [onFeature.id, onMain.id, later.id],
          );
        }));

      test('a push with the same ends as a stored one adds its commits: one fact, forced only if both were', () =>
        withStore(async (store) => {
          const reset = { ...push('c0', 'c2', []), forced: true };
          assert.equal(await store.putChange(reset), 'created');
          assert.equal(await store.putChange(push('c0', 'c2', ['c1', 'c2'])), 'updated');
          assert.equal(await store.putChange(push('c0', 'c2', ['c1', 'c2'])), 'unchanged');
          assert.deepEqual(await store.pushesTo(REPO, 'c2'), [push('c0', 'c2', ['c1', 'c2'])]);
        }));

      test('a commit first pushed on a feature branch takes the default branch when a push to it lists the commit', () =>
        withStore(async (store) => {
          const onFeature = { ...commit('f1', '2026-11-20T08:00:00.000Z'), branch: 'feature' };
          assert.equal(await store.putChange(onFeature), 'created');
          assert.equal(await store.putChange({ ...onFeature, branch: 'other' }), 'unchanged', 'not a default branch');
          assert.equal(await store.putChange({ ...onFeature, branch: 'main' }, { onDefaultBranch: true }), 'updated');
          assert.equal(await store.putChange({ ...onFeature, branch: 'main' }, { onDefaultBranch: true }), 'unchanged');
          assert.equal((await store.commit(REPO, 'f1'))?.branch, 'main');
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
          for (const d of history) await store.putDeploy(d, { shipsChanges: false });
          const previous = await store.previousSuccessfulDeploy('billing', 'production', '2026-11-20T10:05:00.000Z');
          assert.equal(previous?.id, 'b');
          assert.equal(
            await store.previousSuccessfulDeploy('billing', 'production', '2026-11-18T10:00:00.000Z'),
            undefined,
          );
        }));

      test('shipping deploys: ordered per service by finish then id, found before, after and at a sha', () =>
        withStore(async (store) => {
          const a = deploy({ id: 'a', finishedAt: '2026-11-18T10:00:00.000Z', commitSha: 's1' });
          const b = deploy({ id: 'b', finishedAt: '2026-11-19T10:00:00.000Z', commitSha: 's2' });
          const b2 = deploy({ id: 'b2', finishedAt: '2026-11-19T10:00:00.000Z', commitSha: 's2' });
          const noSha = deploy({ id: 'c', finishedAt: '2026-11-19T11:00:00.000Z', commitSha: undefined });
          const other = deploy({
            id: 'd',
            finishedAt: '2026-11-19T12:00:00.000Z',
            service: 'checkout',
            commitSha: 's2',
          });
          for (const d of [b2, other, a, b]) await store.putDeploy(d, { shipsChanges: true });
          await store.putDeploy(noSha, { shipsChanges: false });
          assert.equal((await store.previousShippingDeploy('billing', shipOrder(b)))?.id, 'a');
          assert.equal((await store.previousShippingDeploy('billing', shipOrder(b2)))?.id, 'b', 'same finish: by id');
          assert.equal(await store.previousShippingDeploy('billing', shipOrder(a)), undefined);
          assert.deepEqual(
            (await store.nextShippingDeploys('billing', shipOrder(a), 5)).map((d) => d.id),
            ['b', 'b2'],
          );
          assert.deepEqual(
            (await store.nextShippingDeploys('billing', shipOrder(a), 1)).map((d) => d.id),
            ['b'],
          );
          assert.deepEqual(
            (await store.shippingDeploysAt(REPO, 's2')).map((d) => d.id),
            ['b', 'b2', 'd'],
          );
          assert.deepEqual(await store.shippingDeploysAt(REPO, 'nope'), []);
          // Resolved as the service's first: found by an earlier deploy arriving later.
          await store.recordShipped(b2, { shipped: [], baseline: [], watching: [], first: true });
          assert.deepEqual(
            (await store.laterFirstDeploys('billing', shipOrder(a))).map((d) => d.id),
            ['b2'],
          );
          assert.deepEqual(await store.laterFirstDeploys('billing', shipOrder(b2)), []);
        }));

      test('shipped changes: each held by the earliest deploy that ships it, export state kept on a takeover', () =>
        withStore(async (store) => {
          const later = deploy({ id: 'later', finishedAt: '2026-11-20T12:00:00.000Z' });
          const earlier = deploy({ id: 'earlier', finishedAt: '2026-11-20T11:00:00.000Z' });
          for (const d of [later, earlier]) await store.putDeploy(d, { shipsChanges: true });
          const first = await store.recordShipped(later, {
            shipped: [shipped('c1', later), shipped('c2', later)],
            baseline: [],
            watching: ['c0'],
            first: false,
          });
          assert.deepEqual(
            first.toExport.map((c) => c.sha),
            ['c1', 'c2'],
          );
          assert.deepEqual(
            (await store.deploysWatching(REPO, 'c0')).map((d) => d.id),
            ['later'],
          );
          await store.markShippedExported([shipped('c1').id]);
          // Recorded again (a redelivery): only what is still to send comes back.
          const again = await store.recordShipped(later, {
            shipped: [shipped('c1', later), shipped('c2', later)],
            baseline: [],
            watching: [],
            first: false,
          });
          assert.deepEqual(again, { toExport: [shipped('c2', later)], released: [] });
          assert.deepEqual(await store.deploysWatching(REPO, 'c0'), [], 'the wait is over');

          // An earlier deploy ships c1: it takes c1 over, already sent, so not to send again.
          const takeover = await store.recordShipped(earlier, {
            shipped: [shipped('c1', earlier)],
            baseline: [],
            watching: [],
            first: false,
          });
          assert.deepEqual(takeover, { toExport: [], released: [] });
          assert.deepEqual(await store.shippedBy('earlier'), [shipped('c1', earlier)]);
          assert.deepEqual(await store.shippedBy('later'), [shipped('c2', later)]);
          // Recorded again without c1, the later one releases nothing: c1 is the earlier one's now.
          assert.deepEqual(
            await store.recordShipped(later, {
              shipped: [shipped('c2', later)],
              baseline: [],
              watching: [],
              first: false,
            }),
            { toExport: [shipped('c2', later)], released: [] },
          );
          assert.deepEqual(await store.shippedBy('earlier'), [shipped('c1', earlier)]);
          // The later one cannot take it back.
          await store.recordShipped(later, {
            shipped: [shipped('c1', later), shipped('c2', later)],
            baseline: [],
            watching: [],
            first: false,
          });
          assert.deepEqual(await store.shippedBy('earlier'), [shipped('c1', earlier)]);
          assert.deepEqual(
            (await store.unexportedShipped(10)).map((c) => [c.sha, c.deployId]),
            [['c2', 'later']],
          );

          // What a deploy no longer ships is released; the next holder keeps its export state.
          const released = await store.recordShipped(earlier, {
            shipped: [],
            baseline: [],
            watching: [],
            first: false,
          });
          assert.deepEqual(released, { toExport: [], released: [shipped('c1').id] });
          assert.deepEqual(await store.shippedBy('earlier'), []);
          assert.deepEqual(
            (await store.shippedBetween('2026-11-20T00:00:00.000Z', '2026-11-21T00:00:00.000Z')).map((c) => c.sha),
            ['c2'],
          );
          const retaken = await store.recordShipped(later, {
            shipped: [shipped('c1', later), shipped('c2', later)],
            baseline: [],
            watching: [],
            first: false,
          });
          assert.deepEqual(
            retaken.toExport.map((c) => c.sha),
            ['c2'],
            'c1 was sent once already',
          );
          assert.deepEqual(await store.shippedBy('later'), [shipped('c1', later), shipped('c2', later)]);
          // The stored deploys are the same facts, without bookkeeping fields.
          assert.deepEqual(await store.events({ kind: 'deploy' }), [earlier, later]);
        }));

      test('ranges: deploys (of a service), commits and merged pull requests in [from, to)', () =>
        withStore(async (store) => {
          const d1 = deploy({ id: 'd1', finishedAt: '2026-11-20T00:00:00.000Z' });
          const d2 = deploy({ id: 'd2', finishedAt: '2026-11-20T12:00:00.000Z', service: 'checkout' });
          const d3 = deploy({ id: 'd3', finishedAt: '2026-11-21T00:00:00.000Z' });
          for (const d of [d3, d1, d2]) await store.putDeploy(d, { shipsChanges: false });
          assert.deepEqual(await store.deploysBetween('2026-11-20T00:00:00.000Z', '2026-11-21T00:00:00.000Z'), [
            d1,
            d2,
          ]);
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

      test('events: all kinds oldest first, filtered by kind and time', () =>
        withStore(async (store) => {
          const c1 = commit('c1', '2026-11-20T08:00:00.000Z');
          const c2 = commit('c2', '2026-11-20T09:30:00.000Z');
          const p = push('c0', 'c2', ['c1', 'c2']);
          await store.putChange(c2);
          await store.putChange(c1);
          await store.putChange(p);
          await store.putChange(pullRequest);
          await store.putDeploy(deploy(), { shipsChanges: false });
          assert.deepEqual(
            (await store.events({})).map((e) => e.id),
            [pullRequest.id, c1.id, p.id, c2.id, 'github:1'],
          );
          assert.deepEqual(await store.events({ kind: 'commit', since: '2026-11-20T09:00:00.000Z' }), [c2]);
        }));
    });

    // The export ledger (ExportLedger): who may send a fact, what went, what is in doubt or parked.
    describe('export ledger', () => {
      test('export state: unexported until marked; an updated deploy is exported again; shipped changes once', () =>
        withStore(async (store) => {
          await store.putDeploy(deploy({ status: 'failure' }), { shipsChanges: false });
          assert.deepEqual(
            (await store.unexportedDeploys(10)).map((d) => d.id),
            ['github:1'],
          );
          await store.markDeployExported('github:1');
          assert.deepEqual(await store.unexportedDeploys(10), []);
          await store.putDeploy(deploy({ finishedAt: '2026-11-20T10:09:00.000Z' }), { shipsChanges: true });
          assert.deepEqual(
            (await store.unexportedDeploys(10)).map((d) => d.status),
            ['success'],
          );

          await store.recordShipped(deploy(), {
            shipped: [shipped('c1'), shipped('c2')],
            baseline: [],
            watching: [],
            first: false,
          });
          assert.deepEqual(
            (await store.unexportedShipped(10)).map((s) => s.id),
            [C1, C2],
          );
          await store.markShippedExported([C1]);
          // Recorded again (a redelivery): c1 stays exported, so it is never sent twice.
          await store.recordShipped(deploy(), {
            shipped: [shipped('c1'), shipped('c2')],
            baseline: [],
            watching: [],
            first: false,
          });
          assert.deepEqual(
            (await store.unexportedShipped(10)).map((s) => s.id),
            [C2],
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
          await store.putDeploy(deploy(), { shipsChanges: false });
          assert.deepEqual(await store.claimDeployExport('github:1', t(0), t(2)), [], 'claimed, nothing sent yet');
          assert.equal(await store.claimDeployExport('github:1', t(1), t(3)), undefined, 'held by the first');
          assert.deepEqual(await store.claimDeployExport('github:1', t(3), t(5)), [], 'the first claim lapsed');
          // An export that stopped part-way says which parts went; the next claim is told.
          await store.markDeployParts('github:1', ['series', 'event']);
          await store.releaseExportClaims(['github:1'], []);
          assert.deepEqual(await store.claimDeployExport('github:1', t(3), t(5)), ['series', 'event'], 'given back');
          await store.markDeployExported('github:1');
          assert.equal(await store.claimDeployExport('github:1', t(9), t(11)), undefined, 'exported already');
          assert.equal(await store.claimDeployExport('nope', t(9), t(11)), undefined);

          await store.recordShipped(deploy(), {
            shipped: [shipped('c1'), shipped('c2')],
            baseline: [],
            watching: [],
            first: false,
          });
          assert.deepEqual(await store.claimShippedExport([C1], t(0), t(2)), [C1]);
          assert.deepEqual(await store.claimShippedExport([C1, C2], t(1), t(3)), [C2]);
          await store.releaseExportClaims([], [C1]);
          await store.markShippedExported([C2]);
          assert.deepEqual(await store.claimShippedExport([C1, C2], t(1), t(3)), [C1]);
          // The claim is bookkeeping: the stored facts are unchanged.
          assert.deepEqual(await store.events({ kind: 'deploy' }), [deploy()]);
          assert.deepEqual(await store.shippedBy('github:1'), [shipped('c1'), shipped('c2')]);
        }));

      test('in doubt: marked just before the values go, claimed no more; given back after a definite failure', () =>
        withStore(async (store) => {
          const t = (minute: number) => new Date(Date.UTC(2026, 10, 20, 10, minute)).toISOString();
          const C3 = `billing|${REPO}@c3`;
          const ref = (id: string) => ({ kind: 'shipped' as const, id });
          await store.putDeploy(deploy(), { shipsChanges: true });
          await store.recordShipped(deploy(), {
            shipped: [shipped('c1'), shipped('c2'), shipped('c3')],
            baseline: [],
            watching: [],
            first: false,
          });
          assert.deepEqual(await store.claimShippedExport([C1, C2, C3, C1], t(0), t(2)), [C1, C2, C3]);
          await store.markShippedExported([C3]);
          await store.markExportsInDoubt([ref(C1), ref(C2), ref(C3)]);
          // In doubt: neither listed for a retry nor claimed once the claim lapsed.
          assert.deepEqual(await store.unexportedShipped(10), []);
          assert.deepEqual(await store.claimShippedExport([C1, C2, C3], t(5), t(7)), []);
          // A definite failure gives C2 back; C3 was exported, and stays so.
          await store.clearExportsInDoubt([ref(C2), ref(C3)]);
          assert.deepEqual(
            (await store.unexportedShipped(10)).map((c) => c.id),
            [C2],
          );
          assert.deepEqual(await store.claimShippedExport([C1, C2, C3], t(5), t(7)), [C2]);
        }));

      test('parked exports: sent no more, listed with their reason, due again once unparked', () =>
        withStore(async (store) => {
          const t = (minute: number) => new Date(Date.UTC(2026, 10, 20, 10, minute)).toISOString();
          await store.putDeploy(deploy(), { shipsChanges: false });
          await store.putDeploy(deploy({ id: 'github:2' }), { shipsChanges: false });
          await store.recordShipped(deploy(), { shipped: [shipped('c1')], baseline: [], watching: [], first: false });
          await store.putExportItems([{ id: 'failure:github:1', at: t(0), body: { kind: 'restore' } }]);
          await store.parkExports(
            [
              { kind: 'deploy', id: 'github:1' },
              { kind: 'shipped', id: C1 },
              { kind: 'item', id: 'failure:github:1' },
            ],
            'Datadog DORA deployment failed with 400',
            t(1),
          );
          assert.deepEqual(
            (await store.unexportedDeploys(10)).map((d) => d.id),
            ['github:2'],
          );
          assert.deepEqual(await store.unexportedShipped(10), []);
          assert.deepEqual(await store.unexportedItems(10), []);
          assert.equal(
            await store.claimDeployExport('github:1', t(2), t(4)),
            undefined,
            'a parked export is not claimed',
          );
          assert.deepEqual((await store.parkedExports(10)).map((p) => [p.kind, p.id, p.reason]).sort(), [
            ['deploy', 'github:1', 'Datadog DORA deployment failed with 400'],
            ['item', 'failure:github:1', 'Datadog DORA deployment failed with 400'],
            ['shipped', C1, 'Datadog DORA deployment failed with 400'],
          ]);
          assert.equal(await store.unparkExports(), 3);
          assert.deepEqual(await store.parkedExports(10), []);
          assert.deepEqual(
            (await store.unexportedDeploys(10)).map((d) => d.id),
            ['github:1', 'github:2'],
          );
          assert.equal((await store.unexportedShipped(10)).length, 1);
          assert.equal((await store.unexportedItems(10)).length, 1);
        }));
    });
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
          shipsChanges: i % 2 === 0,
        },
      );
    }
    const plans = store.explainLookups();
    const expected: Record<string, RegExp> = {
      previous:
        /^SEARCH events USING INDEX events_by_deploy \(kind=\? AND service=\? AND environment=\? AND status=\? AND time<\?\)/,
      nextSuccess:
        /^SEARCH events USING INDEX events_by_deploy \(kind=\? AND service=\? AND environment=\? AND status=\? AND time>\?\)/,
      previousShipping: /^SEARCH events USING INDEX events_shipping \(service=\? AND ship_order<\?\)$/,
      nextShipping: /^SEARCH events USING INDEX events_shipping \(service=\? AND ship_order>\?\)$/,
      bySha: /^SEARCH events USING INDEX events_by_sha \(kind=\? AND repository=\? AND sha=\?\)$/,
      shippingAt: /^SEARCH events USING INDEX events_by_sha \(kind=\? AND repository=\? AND sha=\?\)$/,
      watching:
        /^SEARCH w USING INDEX waits_by_sha \(repository=\? AND sha=\?\); SEARCH e USING INDEX sqlite_autoindex_events_1 \(id=\?\)/,
      shippedRow: /^SEARCH shipped USING INDEX sqlite_autoindex_shipped_1 \(id=\?\)$/,
      shippedBy: /^SEARCH shipped USING INDEX shipped_by_deploy/,
      // A service's count bucket and restores: that service's deploys, not every deploy in the window.
      deploysOfBetween:
        /^SEARCH events USING INDEX events_by_service_time \(kind=\? AND service=\? AND environment=\? AND time>\? AND time<\?\)/,
      get: /^SEARCH events USING INDEX sqlite_autoindex_events_1 \(id=\?\)$/,
    };
    for (const [lookup, plan] of Object.entries(plans)) assert.match(plan, expected[lookup]!, `${lookup}: ${plan}`);
  } finally {
    await store.close();
  }
});

test('SQLite: a restart gives back the claims of unfinished exports only, and counts those', async () => {
  const store = new SqliteStore(':memory:');
  try {
    const t = (minute: number) => new Date(Date.UTC(2026, 10, 20, 10, minute)).toISOString();
    for (const id of ['github:1', 'github:2', 'github:3'])
      await store.putDeploy(deploy({ id }), { shipsChanges: false });
    for (const id of ['github:1', 'github:2']) await store.claimDeployExport(id, t(0), t(30));
    await store.markDeployExported('github:1');
    // One unfinished export (github:2) was held by the run that stopped; github:1 finished.
    assert.equal(await store.releaseClaimsOfEarlierRun(), 1);
    assert.deepEqual(await store.claimDeployExport('github:2', t(1), t(31)), [], 'free again before its claim lapsed');
    assert.equal(await store.claimDeployExport('github:1', t(1), t(31)), undefined, 'exported already');
    assert.equal(await store.releaseClaimsOfEarlierRun(), 1);
  } finally {
    await store.close();
  }
});

describe('Firestore emulator', { skip: skipUnlessEmulator('firestore') }, () => {
  useFirestoreEmulator();
  // Each test gets a project of its own: a clean database on the same emulator.
  storeContract('Firestore', () => FirestoreStore.connect(`devstats-${randomUUID().slice(0, 8)}`));
});
