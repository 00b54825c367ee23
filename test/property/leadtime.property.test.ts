import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { BusMessage } from '../../shared/bus/bus.ts';
import { Exporter } from '../../shared/export/exporter.ts';
import { memoryLogger } from '../../shared/log.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { FirestoreStore } from '../../shared/store/firestore.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import type { Store } from '../../shared/store/store.ts';
import { skipUnlessEmulator, useFirestoreEmulator } from '../support/emulator.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { deployMessage, nameOf, pullRequestMessage, pushMessage, REPO, ZERO } from '../support/history.ts';

/*
 * Random histories against a reference model written here, apart from shared/metrics/lead-time.ts: linear
 * pushes, hotfix branches merged back, feature branches merged with a merge commit, squash merges
 * (with their pull request), force pushes, resets to an earlier sha, lost webhooks, deploys of the
 * head, of an earlier sha (rollbacks) and of hotfixes, deploys without a sha, failed and cancelled
 * deploys, a later status of the same deploy, two services, staging; delivered with duplicates in
 * any order, then all again in another order.
 *
 * The model, from DESIGN.md: H(x), the history of sha x, is every commit of every push to x, and
 * H(before) of each push that is not forced. A service's shipping deploys (successful, production,
 * with a sha), ordered by finish then id: the first ships the commits of the pushes to its sha; each
 * later one ships H(its sha) minus the histories of all earlier ones. A deploy whose sha no push
 * delivered ships the pull request merged as that sha, if any. Lead time = finish − commit time,
 * never below 0; for a pull request, finish − its creation. Both services live in one repository
 * and own paths of it: a commit is shipped only to the services whose paths its files match (files
 * unknown: to both).
 */

const BASE = Date.parse('2026-11-20T10:00:00.000Z');
const time = (second: number) => new Date(BASE + second * 1000).toISOString();

interface PushFact {
  branch: string;
  before: string;
  after: string;
  commits: string[];
  forced: boolean;
  delivered: boolean;
}
interface DeployFact {
  id: string;
  service: string;
  environment: string;
  status: 'success' | 'failure' | 'cancelled';
  sha: string | undefined;
  finishedAt: string;
}
interface PullRequestFact {
  number: number;
  mergeSha: string;
  createdAt: string;
  mergedAt: string;
}
interface History {
  pushes: PushFact[];
  deploys: DeployFact[];
  pullRequests: PullRequestFact[];
  committedAt: Map<string, string>;
  messages: BusMessage[];
}

type Op =
  | { kind: 'commit'; count: number; lost: boolean }
  | { kind: 'hotfix' }
  | { kind: 'mergeHotfix' }
  | { kind: 'feature'; count: number }
  | { kind: 'squash'; lostPush: boolean }
  | { kind: 'force'; count: number }
  | { kind: 'reset'; back: number }
  | {
      kind: 'deploy';
      target: 'head' | 'earlier' | 'hotfix' | 'inner' | 'none';
      pick: number;
      service: 'billing' | 'worker';
      environment: 'production' | 'staging';
      status: 'success' | 'failure' | 'cancelled';
      sameSecond: boolean;
      skewed: boolean;
    }
  | { kind: 'update'; pick: number; status: 'success' | 'failure' };

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('commit' as const),
      count: fc.integer({ min: 1, max: 3 }),
      lost: fc.integer({ min: 0, max: 9 }).map((n) => n < 3),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'hotfix' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'mergeHotfix' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('feature' as const), count: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('squash' as const), lostPush: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('force' as const), count: fc.integer({ min: 1, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reset' as const), back: fc.integer({ min: 1, max: 3 }) }) },
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('deploy' as const),
      target: fc.constantFrom('head', 'head', 'head', 'earlier', 'hotfix', 'inner', 'none'),
      pick: fc.nat(),
      service: fc.constantFrom('billing', 'billing', 'worker'),
      environment: fc.constantFrom('production', 'production', 'production', 'staging'),
      status: fc.constantFrom('success', 'success', 'success', 'success', 'failure', 'cancelled'),
      sameSecond: fc.integer({ min: 0, max: 9 }).map((n) => n < 2),
      skewed: fc.integer({ min: 0, max: 9 }).map((n) => n < 1),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('update' as const),
      pick: fc.nat(),
      status: fc.constantFrom('success', 'failure'),
    }),
  },
);

/**
 * The files a commit changed, the same in every push that lists it (issue 28): by its number, one
 * service's folder, the other's, the shared folder both own, README (neither's), or unknown (the
 * push lists none: it is then every service's).
 */
function filesOf(name: string): string[] | undefined {
  const n = Number(name.replace(/\D/g, '')) % 5;
  return [['billing/main.tf'], ['worker/main.tf'], ['shared/tags.tf'], ['README.md'], undefined][n];
}
const PATHS: Record<string, RegExp> = { billing: /^(billing|shared)\//, worker: /^(worker|shared)\// };
/** The model's own reading of DESIGN.md: a commit is a service's when a file matches, or its files are unknown. */
const isServiceChange = (service: string, commit: string) => {
  const files = filesOf(commit);
  return files === undefined || files.some((f) => PATHS[service]!.test(f));
};

/** Plays the operations into facts, and the deliveries that tell them. */
function play(ops: Op[]): History {
  const history: History = { pushes: [], deploys: [], pullRequests: [], committedAt: new Map(), messages: [] };
  let clock = 0;
  let names = 0;
  let main = ZERO;
  const mainHeads: string[] = [];
  const innerCommits: string[] = [];
  let hotfix: { branch: string; head: string; commits: string[] } | undefined;
  let hotfixes = 0;
  const newCommits = (prefix: string, count: number) =>
    Array.from({ length: count }, () => {
      const name = `${prefix}${++names}`;
      history.committedAt.set(name, time(clock++));
      return name;
    });
  const push = (fact: Omit<PushFact, 'delivered'>, delivered = true) => {
    history.pushes.push({ ...fact, delivered });
    if (!delivered) return;
    history.messages.push(
      pushMessage(
        fact.before,
        fact.after,
        fact.commits.map((name) => ({
          name,
          at: history.committedAt.get(name) ?? time(0),
          ...(filesOf(name) === undefined ? {} : { paths: filesOf(name) }),
        })),
        { branch: fact.branch, forced: fact.forced, pushedAt: time(clock) },
      ),
    );
  };
  const moveMain = (after: string, commits: string[], options: { forced?: boolean; delivered?: boolean } = {}) => {
    push({ branch: 'main', before: main, after, commits, forced: options.forced ?? false }, options.delivered);
    innerCommits.push(...commits.slice(0, -1));
    main = after;
    mainHeads.push(after);
  };

  for (const op of ops) {
    clock += 5;
    switch (op.kind) {
      case 'commit': {
        const commits = newCommits('a', op.count);
        moveMain(commits.at(-1)!, commits, { delivered: !op.lost });
        break;
      }
      case 'hotfix': {
        const [h] = newCommits('h', 1);
        hotfix = { branch: `hotfix-${++hotfixes}`, head: h!, commits: [h!] };
        // A new branch: GitHub sends the zero sha as `before`.
        push({ branch: hotfix.branch, before: ZERO, after: h!, commits: [h!], forced: false });
        break;
      }
      case 'mergeHotfix': {
        if (hotfix === undefined) break;
        const [m] = newCommits('m', 1);
        moveMain(m!, [...hotfix.commits, m!]);
        hotfix = undefined;
        break;
      }
      case 'feature': {
        const commits = newCommits('f', op.count);
        push({ branch: `feature-${names}`, before: ZERO, after: commits.at(-1)!, commits, forced: false });
        const [m] = newCommits('m', 1);
        moveMain(m!, [...commits, m!]);
        break;
      }
      case 'squash': {
        const [s] = newCommits('s', 1);
        const pr: PullRequestFact = {
          number: history.pullRequests.length + 1,
          mergeSha: s!,
          createdAt: time(clock - 120),
          mergedAt: time(clock),
        };
        history.pullRequests.push(pr);
        history.messages.push(pullRequestMessage(pr.number, pr.mergeSha, pr.createdAt, pr.mergedAt));
        moveMain(s!, [s!], { delivered: !op.lostPush });
        break;
      }
      case 'force': {
        const commits = newCommits('r', op.count);
        moveMain(commits.at(-1)!, commits, { forced: true });
        break;
      }
      case 'reset': {
        const back = mainHeads.at(-1 - op.back);
        if (back === undefined) break;
        moveMain(back, [], { forced: true });
        break;
      }
      case 'deploy': {
        const earlier = mainHeads.slice(0, -1);
        const sha =
          op.target === 'none'
            ? undefined
            : op.target === 'earlier' && earlier.length > 0
              ? earlier[op.pick % earlier.length]
              : op.target === 'hotfix' && hotfix !== undefined
                ? hotfix.head
                : op.target === 'inner' && innerCommits.length > 0
                  ? innerCommits[op.pick % innerCommits.length]
                  : main === ZERO
                    ? undefined
                    : main;
        const previous = history.deploys.at(-1);
        const finishedAt =
          op.sameSecond && previous !== undefined ? previous.finishedAt : time(op.skewed ? clock - 600 : clock);
        const fact: DeployFact = {
          id: `d${history.deploys.length + 1}`,
          service: op.service,
          environment: op.environment,
          status: op.status,
          sha,
          finishedAt,
        };
        history.deploys.push(fact);
        break;
      }
      case 'update': {
        const original = history.deploys.length === 0 ? undefined : history.deploys[op.pick % history.deploys.length];
        if (original === undefined || original.status === 'cancelled') break;
        // A later terminal status of the same deploy (same id, later finish).
        history.deploys.push({ ...original, status: op.status, finishedAt: time(clock) });
        break;
      }
    }
  }
  // Counterexamples show the facts, not the bytes of every delivery.
  Object.defineProperty(history, fc.toStringMethod, {
    value: () => JSON.stringify({ pushes: history.pushes, deploys: history.deploys, prs: history.pullRequests }),
  });
  for (const d of history.deploys) {
    history.messages.push(
      deployMessage(d.id, d.sha, d.finishedAt, { service: d.service, environment: d.environment, status: d.status }),
    );
  }
  return history;
}

interface Shipped {
  deploy: string;
  leadTimeSeconds: number;
  via: 'push' | 'pull_request';
}

/** The reference model: what each service shipped, by `<service>|<commit>`. */
function model(history: History): Map<string, Shipped> {
  const pushesTo = new Map<string, PushFact[]>();
  for (const p of history.pushes.filter((p) => p.delivered)) {
    const list = pushesTo.get(p.after) ?? [];
    list.push(p);
    pushesTo.set(p.after, list);
  }
  const historyOf = (sha: string): Set<string> => {
    const found = new Set<string>();
    const seen = new Set<string>();
    const visit = (x: string) => {
      if (seen.has(x) || x === ZERO) return;
      seen.add(x);
      for (const p of pushesTo.get(x) ?? []) {
        for (const c of p.commits) found.add(c);
        if (!p.forced) visit(p.before);
      }
    };
    visit(sha);
    return found;
  };
  // The last report of each deploy id wins (a later status of the same deploy).
  const final = new Map<string, DeployFact>();
  for (const d of history.deploys) {
    const stored = final.get(d.id);
    if (stored === undefined || d.finishedAt > stored.finishedAt) final.set(d.id, d);
  }
  const shipping = [...final.values()]
    .filter((d) => d.status === 'success' && d.environment === 'production' && d.sha !== undefined)
    .sort((a, b) =>
      a.finishedAt === b.finishedAt
        ? `ci:${a.service}:${a.id}` < `ci:${b.service}:${b.id}`
          ? -1
          : 1
        : a.finishedAt < b.finishedAt
          ? -1
          : 1,
    );
  const result = new Map<string, Shipped>();
  const seconds = (from: string, to: string) => Math.max(0, (Date.parse(to) - Date.parse(from)) / 1000);
  for (const service of ['billing', 'worker']) {
    const covered = new Set<string>();
    let first = true;
    for (const d of shipping.filter((x) => x.service === service)) {
      const sha = d.sha!;
      const whole = historyOf(sha);
      const ships = first
        ? new Set((pushesTo.get(sha) ?? []).flatMap((p) => p.commits))
        : new Set([...whole].filter((c) => !covered.has(c)));
      first = false;
      for (const c of ships) {
        if (!isServiceChange(service, c)) continue;
        const key = `${service}|${c}`;
        if (!result.has(key))
          result.set(key, {
            deploy: d.id,
            leadTimeSeconds: seconds(history.committedAt.get(c)!, d.finishedAt),
            via: 'push',
          });
      }
      const pr = history.pullRequests.find((p) => p.mergeSha === sha);
      if ((pushesTo.get(sha) ?? []).length === 0 && pr !== undefined && !result.has(`${service}|${sha}`)) {
        result.set(`${service}|${sha}`, {
          deploy: d.id,
          leadTimeSeconds: seconds(pr.createdAt, d.finishedAt),
          via: 'pull_request',
        });
      }
      for (const c of whole) covered.add(c);
    }
  }
  return result;
}

// Both services live in one repository, each owning its folder and the shared one.
const settings = parseSettings({
  services: {
    billing: { repository: REPO, paths: ['billing/**', 'shared/**'] },
    worker: { repository: REPO, paths: ['worker/**', 'shared/**'] },
  },
});

/** The SQLite store, noting each shipped change marked as sent to Datadog. */
class MarkingStore extends SqliteStore {
  readonly marked: string[] = [];
  override markShippedExported(ids: string[]): Promise<void> {
    this.marked.push(...ids);
    return super.markShippedExported(ids);
  }
}

function pipeline(withExport: boolean, using = settings) {
  const store = new MarkingStore(':memory:');
  return { ...pipelineOver(store, withExport, using), store };
}

function pipelineOver(store: Store, withExport: boolean, using = settings) {
  const settings = using;
  const logger = memoryLogger();
  const sink = new RecordingSink();
  const now = () => new Date(BASE + 1800_000);
  const exporter = withExport ? new Exporter({ store, sink, settings, logger, now }) : undefined;
  const processMessage = createProcessor({ store, settings, logger, now, ...(exporter ? { exporter } : {}) });
  const deliver = async (messages: BusMessage[]) => {
    for (const m of messages) await processMessage(m);
  };
  const shipped = async () => {
    const out = new Map<string, Shipped>();
    for (const s of await store.shippedBetween('2000-01-01T00:00:00.000Z', '2100-01-01T00:00:00.000Z'))
      out.set(`${s.service}|${nameOf(s.sha)}`, {
        deploy: s.deployId.split(':').at(-1)!,
        leadTimeSeconds: s.leadTimeSeconds,
        via: s.via,
      });
    return out;
  };
  return { store, deliver, shipped, sink, processMessage };
}

const sorted = (map: Map<string, Shipped>) => [...map].sort(([a], [b]) => (a < b ? -1 : 1));

/** A history, and two arrival orders of its deliveries (with duplicates). */
const scenario = fc
  .array(opArbitrary, { minLength: 1, maxLength: 40 })
  .map(play)
  .chain((history) => {
    const indices = history.messages.map((_, i) => i);
    const withDuplicates = fc
      .tuple(fc.shuffledSubarray(indices, { minLength: indices.length }), fc.subarray(indices))
      .chain(([order, again]) => fc.shuffledSubarray([...order, ...again], { minLength: order.length + again.length }));
    return fc.tuple(fc.constant(history), withDuplicates, fc.shuffledSubarray(indices, { minLength: indices.length }));
  });

const RUNS = Number(process.env.DEVSTATS_PROPERTY_RUNS ?? 150);
/** Each Firestore run is a project of its own on the emulator, about 10 ms a round trip: fewer runs. */
const FIRESTORE_RUNS = Number(process.env.DEVSTATS_PROPERTY_FIRESTORE_RUNS ?? 12);
/** `DEVSTATS_PROPERTY_SEED=<seed> DEVSTATS_PROPERTY_PATH=<path>` replays a counterexample fast-check printed. */
const REPLAY = process.env.DEVSTATS_PROPERTY_SEED
  ? { seed: Number(process.env.DEVSTATS_PROPERTY_SEED), path: process.env.DEVSTATS_PROPERTY_PATH, endOnFailure: true }
  : {};

type Pipeline = Pick<ReturnType<typeof pipelineOver>, 'deliver' | 'shipped' | 'processMessage'> & { store: Store };

/** Delivered with duplicates in one order, then all again in another: the model's figures each time. */
const inAnyOrder = (open: () => Promise<Pipeline>) =>
  fc.asyncProperty(scenario, async ([history, first, second]) => {
    const { deliver, shipped, store } = await open();
    try {
      await deliver(first.map((i) => history.messages[i]!));
      const expected = sorted(model(history));
      assert.deepEqual(sorted(await shipped()), expected);
      await deliver(second.map((i) => history.messages[i]!));
      assert.deepEqual(sorted(await shipped()), expected, 'redelivered in another order');
    } finally {
      await store.close();
    }
  });

/** Delivered 2 to 8 at a time, as several instances of process (or one with concurrency) take them. */
const concurrently = (open: () => Promise<Pipeline>) =>
  fc.asyncProperty(scenario, fc.integer({ min: 2, max: 8 }), async ([history, first], width) => {
    const { shipped, store, processMessage } = await open();
    try {
      const messages = first.map((i) => history.messages[i]!);
      for (let i = 0; i < messages.length; i += width)
        await Promise.all(messages.slice(i, i + width).map((m) => processMessage(m)));
      assert.deepEqual(sorted(await shipped()), sorted(model(history)));
    } finally {
      await store.close();
    }
  });

const sqlitePipeline = () => Promise.resolve(pipeline(false));

describe('lead time against a reference model (fast-check)', () => {
  test('every commit that reached production has exactly one lead time, to the first deploy holding it; order and redelivery change nothing', async () => {
    await fc.assert(inAnyOrder(sqlitePipeline), { numRuns: RUNS, includeErrorInReport: true, ...REPLAY });
  });

  test('delivered concurrently (as several instances of process handle them), the same figures', async () => {
    await fc.assert(concurrently(sqlitePipeline), { numRuns: RUNS, includeErrorInReport: true, ...REPLAY });
  });

  test('Datadog gets at most one lead time per commit and service, and one for every commit shipped', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ([history, first, second]) => {
        const { deliver, store, sink } = pipeline(true);
        try {
          await deliver(first.map((i) => history.messages[i]!));
          await deliver(second.map((i) => history.messages[i]!));
          const points = sink.points.filter((x) => x.metric === 'devstats.lead_time').flatMap((p) => p.values);
          assert.equal(new Set(store.marked).size, store.marked.length, 'no change is sent twice');
          assert.equal(points.length, store.marked.length, 'one point per change sent');
          const final = await store.shippedBetween('2000-01-01T00:00:00.000Z', '2100-01-01T00:00:00.000Z');
          for (const change of final) assert.ok(store.marked.includes(change.id), `${change.id} was sent`);
        } finally {
          await store.close();
        }
      }),
      { numRuns: Math.ceil(RUNS / 3), includeErrorInReport: true, ...REPLAY },
    );
  });
});

/*
 * The same two properties on the Firestore store: its transactions (a deploy's shipped changes
 * read by id from the list it keeps, not queried) are what concurrent delivery exercises.
 */
describe(
  'lead time against the reference model, Firestore store (the emulator)',
  {
    skip: skipUnlessEmulator('firestore'),
  },
  () => {
    useFirestoreEmulator();
    const firestorePipeline = async () =>
      pipelineOver(await FirestoreStore.connect(`devstats-prop-${randomUUID().slice(0, 8)}`), false);

    test('order and redelivery change nothing', async () => {
      await fc.assert(inAnyOrder(firestorePipeline), {
        numRuns: FIRESTORE_RUNS,
        includeErrorInReport: true,
        ...REPLAY,
      });
    });

    test('delivered concurrently, the same figures', async () => {
      await fc.assert(concurrently(firestorePipeline), {
        numRuns: FIRESTORE_RUNS,
        includeErrorInReport: true,
        ...REPLAY,
      });
    });
  },
);

/*
 * A counterexample the concurrent property found once (1 run in 1,000) while the deployed sha's reads
 * went beside the previous deploy's: a push of a1..a3, a lost push of a4, a forced reset to a3,
 * deploys of a4 and then a3 in the same second, all delivered at once. The push that brings a3's
 * commits was stored while the deploy of a3 walked (finding only the reset there), and looked for
 * deploys watching a3 before that one recorded it: the check after recording reads the pushes again
 * at every sha the walk went through, not only at its gaps.
 */
test('a push stored while a deploy walks its sha, where a forced reset already points, is still shipped', async () => {
  const deployHead = (timing: { sameSecond: boolean; skewed: boolean }): Op => ({
    kind: 'deploy',
    target: 'head',
    pick: 0,
    service: 'billing',
    environment: 'production',
    status: 'success',
    ...timing,
  });
  const history = play([
    { kind: 'commit', count: 3, lost: false },
    { kind: 'commit', count: 1, lost: true },
    deployHead({ sameSecond: false, skewed: true }),
    { kind: 'reset', back: 1 },
    deployHead({ sameSecond: true, skewed: false }),
  ]);
  // No path rules here: every commit is billing's, as when this race was found.
  const { shipped, store, processMessage } = pipeline(false, parseSettings({}));
  try {
    await Promise.all([1, 3, 0, 2, 0].map((i) => processMessage(history.messages[i]!)));
    assert.deepEqual(
      sorted(await shipped()).map(([commit, s]) => [commit, s.deploy]),
      [
        ['billing|a1', 'd2'],
        ['billing|a2', 'd2'],
        ['billing|a3', 'd2'],
      ],
    );
  } finally {
    await store.close();
  }
});
