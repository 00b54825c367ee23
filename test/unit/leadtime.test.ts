import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BusMessage } from '../../shared/bus/bus.ts';
import { Exporter } from '../../shared/export/exporter.ts';
import { memoryLogger } from '../../shared/log.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { buildReport, dayRange, previousPeriod } from '../../shared/report/figures.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import {
  at,
  deployMessage,
  nameOf,
  pullRequestMessage,
  type PushedCommit,
  pushMessage,
  REPO,
  sha,
  ZERO,
} from '../support/history.ts';

const settings = parseSettings({});

async function run(messages: BusMessage[], options: { export?: boolean } = {}) {
  const store = new SqliteStore(':memory:');
  const logger = memoryLogger();
  const sink = new RecordingSink();
  // Within the hour Datadog takes points for, of the deploys the export test tells.
  const now = () => new Date(at(4, 20));
  const exporter = options.export === true ? new Exporter({ store, sink, settings, logger, now }) : undefined;
  const processMessage = createProcessor({ store, settings, logger, now, ...(exporter ? { exporter } : {}) });
  const deliver = async (more: BusMessage[]) => {
    for (const m of more) assert.equal((await processMessage(m)).outcome, 'stored');
  };
  await deliver(messages);
  /** Deploy id → the commit names it ships, sorted. */
  const shipped = async () => {
    const byDeploy: Record<string, string[]> = {};
    for (const s of await store.shippedBetween('2000-01-01T00:00:00.000Z', '2100-01-01T00:00:00.000Z'))
      (byDeploy[s.deployId.replace('ci:billing:', '')] ??= []).push(nameOf(s.sha));
    for (const list of Object.values(byDeploy)) list.sort();
    return byDeploy;
  };
  return { store, deliver, shipped, sink };
}

/** One commit per minute from `hour`: [a1 … an] named `prefix` + number. */
function commits(prefix: string, from: number, to: number, hour = 1): PushedCommit[] {
  const list: PushedCommit[] = [];
  for (let i = from; i <= to; i++) list.push({ name: `${prefix}${i}`, at: at(hour, i) });
  return list;
}

const names = (prefix: string, from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);

describe('lead time: first-ship semantics, whatever the arrival order (issue 11)', () => {
  test('a rollback ships nothing: deploy a5, deploy a10, roll back to a8', async () => {
    const { shipped } = await run([
      pushMessage(ZERO, 'a5', commits('a', 1, 5)),
      ...[6, 7, 8, 9, 10].map((i) => pushMessage(`a${i - 1}`, `a${i}`, commits('a', i, i))),
      deployMessage('d1', 'a5', at(3)),
      deployMessage('d2', 'a10', at(4)),
      deployMessage('rollback', 'a8', at(5)),
    ]);
    assert.deepEqual(await shipped(), { d1: names('a', 1, 5), d2: names('a', 6, 10).sort() });
  });

  test('after a deploy from a hotfix branch, the next main deploy ships only what main added since its last deploy', async () => {
    const { shipped } = await run([
      pushMessage(ZERO, 'a3', commits('a', 1, 3)),
      deployMessage('d1', 'a3', at(3)),
      pushMessage(ZERO, 'h1', [{ name: 'h1', at: at(3, 10) }], { branch: 'hotfix' }),
      deployMessage('hotfix', 'h1', at(4)),
      pushMessage('a3', 'a6', commits('a', 4, 6)),
      deployMessage('d3', 'a6', at(5)),
    ]);
    assert.deepEqual(await shipped(), { d1: names('a', 1, 3), hotfix: ['h1'], d3: names('a', 4, 6) });
  });

  test('commits a force push discarded are never shipped', async () => {
    const { shipped } = await run([
      pushMessage(ZERO, 'a1', commits('a', 1, 1)),
      deployMessage('d1', 'a1', at(3)),
      pushMessage('a1', 'a3', commits('a', 2, 3)),
      pushMessage(
        'a3',
        'b3',
        [
          { name: 'b2', at: at(3, 30) },
          { name: 'b3', at: at(3, 31) },
        ],
        { forced: true },
      ),
      deployMessage('d2', 'b3', at(4)),
      pushMessage('b3', 'b4', [{ name: 'b4', at: at(4, 10) }]),
      deployMessage('d3', 'b4', at(5)),
    ]);
    assert.deepEqual(await shipped(), { d1: ['a1'], d2: ['b2', 'b3'], d3: ['b4'] });
  });

  test('deploys arriving out of order: D2 at a7 after D3 at a10, each ships its own', async () => {
    const history = [
      pushMessage(ZERO, 'a5', commits('a', 1, 5)),
      pushMessage('a5', 'a7', commits('a', 6, 7)),
      pushMessage('a7', 'a10', commits('a', 8, 10)),
      deployMessage('d1', 'a5', at(3)),
    ];
    const { shipped } = await run([
      ...history,
      deployMessage('d3', 'a10', at(5)), // processed first
      deployMessage('d2', 'a7', at(4)),
    ]);
    assert.deepEqual(await shipped(), { d1: names('a', 1, 5), d2: ['a6', 'a7'], d3: names('a', 8, 10).sort() });
  });

  test('the first deploy arriving last: the one that was first ships its whole history since then', async () => {
    const { shipped } = await run([
      pushMessage(ZERO, 'a3', commits('a', 1, 3)),
      pushMessage('a3', 'a6', commits('a', 4, 6)),
      deployMessage('d2', 'a6', at(5)), // alone, it is the service's first: its own push only
      deployMessage('d1', 'a3', at(4)),
    ]);
    assert.deepEqual(await shipped(), { d1: names('a', 1, 3), d2: names('a', 4, 6) });
  });

  test('a deploy without a sha in between (a Terraform apply) does not make the next one a first deploy', async () => {
    const { shipped } = await run([
      pushMessage(ZERO, 'a3', commits('a', 1, 3)),
      deployMessage('d1', 'a3', at(3)),
      deployMessage('terraform-apply', undefined, at(3, 30)),
      pushMessage('a3', 'a4', commits('a', 4, 4)),
      pushMessage('a4', 'a6', commits('a', 5, 6)),
      deployMessage('d2', 'a6', at(4)),
    ]);
    assert.deepEqual(await shipped(), { d1: names('a', 1, 3), d2: names('a', 4, 6) });
  });

  test('a push that arrives after the deploy that needed it completes its lead times; until then it waits', async () => {
    const { store, deliver, shipped } = await run([
      pushMessage(ZERO, 'a3', commits('a', 1, 3)),
      deployMessage('d1', 'a3', at(3)),
      // a3 → a5 is late
      pushMessage('a5', 'a7', commits('a', 6, 7)),
      deployMessage('d2', 'a7', at(4)),
    ]);
    assert.deepEqual((await shipped()).d2, ['a6', 'a7']);
    assert.deepEqual(
      (await store.deploysWatching(REPO, sha('a5'))).map((d) => d.id),
      ['ci:billing:d2'],
      'a gap never marks a deploy settled',
    );
    await deliver([pushMessage('a3', 'a5', commits('a', 4, 5))]);
    assert.deepEqual((await shipped()).d2, names('a', 4, 7));
  });

  test('a pull request before its push stands in for its commits; the push replaces it, in the store only', async () => {
    const { store, deliver, shipped, sink } = await run(
      [
        pushMessage(ZERO, 'a1', commits('a', 1, 1)),
        deployMessage('d1', 'a1', at(3, 30)),
        pullRequestMessage(5, 'm', at(1), at(3, 50)),
        deployMessage('d2', 'm', at(4)),
      ],
      { export: true },
    );
    const [fallback] = await store.shippedBy('ci:billing:d2');
    assert.equal(fallback?.via, 'pull_request');
    assert.equal(fallback.leadTimeSeconds, 3 * 3600, 'deploy − pull request created');
    await deliver([
      pushMessage('a1', 'm', [
        { name: 'f1', at: at(2) },
        { name: 'f2', at: at(2, 30) },
        { name: 'm', at: at(3, 50) },
      ]),
    ]);
    assert.deepEqual((await shipped()).d2, ['f1', 'f2', 'm']);
    const merge = (await store.shippedBy('ci:billing:d2')).find((s) => s.sha === sha('m'));
    assert.equal(merge?.via, 'push');
    assert.equal(merge.leadTimeSeconds, 10 * 60);
    assert.equal(merge.pullRequest?.number, 5);
    // Datadog: the pull request's point stays; the commits it stood for arrive; m is not sent again.
    const leadTimes = sink.points.filter((p) => p.metric === 'devstats.lead_time').flatMap((p) => p.values);
    // d1's a1 (01:01 → 03:30); d2's pull request (01:00 → 04:00), then f1 (02:00) and f2 (02:30).
    assert.deepEqual(
      leadTimes.sort((a, b) => a - b),
      [5400, 7200, 8940, 10800],
    );
  });

  test('a commit dated after its deploy (clock skew) gets 0, never a negative lead time', async () => {
    const { store } = await run([
      pushMessage(ZERO, 'a1', [{ name: 'a1', at: at(5) }]),
      deployMessage('d1', 'a1', at(4)),
    ]);
    const [change] = await store.shippedBy('ci:billing:d1');
    assert.equal(change?.leadTimeSeconds, 0);
    assert.equal(change.committedAt, at(5), 'kept as the commit says, for the data-quality count');
    const day = dayRange('2026-11-20', '2026-11-20');
    const report = await buildReport(store, settings, { period: day, comparison: previousPeriod(day) });
    assert.equal(report.dataQuality.commitsDatedAfterTheirDeploy, 1);
  });

  test('a force push back to an earlier sha (X→Y, Y→X) is walked once: the deploy is stored, never stuck', async () => {
    const { shipped, store } = await run([
      pushMessage(ZERO, 'o', commits('o', 1, 1)),
      deployMessage('d0', 'o', at(2)),
      pushMessage('o', 'x', [{ name: 'x', at: at(2, 10) }]),
      pushMessage('x', 'y', [{ name: 'y', at: at(2, 20) }]),
      pushMessage('y', 'x', [], { branch: 'main' }),
      deployMessage('d1', 'x', at(3)),
    ]);
    assert.deepEqual((await shipped()).d1, ['x', 'y']);
    assert.equal((await store.shippedBy('ci:billing:d1')).length, 2);
  });

  test('two services deploying one repository each ship every commit once', async () => {
    const { store } = await run([
      pushMessage(ZERO, 'a3', commits('a', 1, 3)),
      deployMessage('api', 'a3', at(3), { service: 'api' }),
      deployMessage('worker', 'a3', at(4), { service: 'worker' }),
      deployMessage('staging', 'a3', at(2), { environment: 'staging' }),
    ]);
    const all = await store.shippedBetween('2000-01-01T00:00:00.000Z', '2100-01-01T00:00:00.000Z');
    assert.deepEqual(all.map((s) => `${s.service}:${nameOf(s.sha)}`).sort(), [
      'api:a1',
      'api:a2',
      'api:a3',
      'worker:a1',
      'worker:a2',
      'worker:a3',
    ]);
  });

  test('redelivering everything, in another order, changes nothing', async () => {
    const history = [
      pushMessage(ZERO, 'a3', commits('a', 1, 3)),
      deployMessage('d1', 'a3', at(3)),
      pushMessage('a3', 'a6', commits('a', 4, 6)),
      deployMessage('d2', 'a6', at(4)),
      deployMessage('d3', 'a4', at(5)),
    ];
    const { deliver, shipped } = await run(history);
    const once = await shipped();
    await deliver([...history].reverse());
    assert.deepEqual(await shipped(), once);
    assert.deepEqual(once, { d1: names('a', 1, 3), d2: names('a', 4, 6) });
  });
});

describe('lead time over a long backfilled history (issue 30: read in bulk past the first shas)', () => {
  /** c1 … cn, one a minute from midnight, each the parent of the next, as `devstats backfill github` stores them. */
  async function backfilled(store: SqliteStore, n: number) {
    await store.putChanges(
      Array.from({ length: n }, (_, i) => ({
        change: {
          kind: 'commit' as const,
          id: `${REPO}@${sha(`c${i + 1}`)}`,
          repository: REPO,
          branch: 'main',
          sha: sha(`c${i + 1}`),
          authorName: `Dev ${i % 5}`,
          authorLogin: `dev${i % 5}`,
          timestamp: at(0, i + 1),
          isBot: false,
          parents: i === 0 ? [] : [sha(`c${i}`)],
        },
        onDefaultBranch: true,
      })),
    );
  }

  test('1,200 commits: the deploy after one at c100 ships c101 … c1200, another service deploying c500 between', async () => {
    const { store, deliver, shipped } = await run([]);
    await backfilled(store, 1200);
    await deliver([
      deployMessage('d1', 'c100', at(0, 101)),
      deployMessage('api', 'c500', at(0, 501), { service: 'api' }),
      deployMessage('d3', 'c1200', at(0, 1201)),
    ]);
    const byDeploy = await shipped();
    assert.deepEqual(byDeploy.d1, ['c100']);
    assert.deepEqual(byDeploy.d3, names('c', 101, 1200).sort());
    const d3 = (await store.shippedBy('ci:billing:d3')).find((s) => nameOf(s.sha) === 'c101');
    assert.equal(d3?.leadTimeSeconds, 1100 * 60);
  });

  test('the same history delivered the other way round (the later deploy first) ships the same', async () => {
    const { store, deliver, shipped } = await run([]);
    await backfilled(store, 1200);
    await deliver([
      deployMessage('d3', 'c1200', at(0, 1201)),
      deployMessage('api', 'c500', at(0, 501), { service: 'api' }),
      deployMessage('d1', 'c100', at(0, 101)),
    ]);
    const byDeploy = await shipped();
    assert.deepEqual(byDeploy.d1, ['c100']);
    assert.deepEqual(byDeploy.d3, names('c', 101, 1200).sort());
  });

  test('an earlier deploy at c900, then a rollback to c100: the next deploy, at c1200, ships c901 … c1200', async () => {
    const { store, deliver, shipped } = await run([]);
    await backfilled(store, 1200);
    await deliver([
      deployMessage('d1', 'c900', at(0, 901)),
      deployMessage('rollback', 'c100', at(0, 950)),
      deployMessage('d3', 'c1200', at(0, 1201)),
    ]);
    const byDeploy = await shipped();
    assert.equal(byDeploy.rollback, undefined);
    assert.deepEqual(byDeploy.d3, names('c', 901, 1200).sort());
  });
});
