import {
  type Commit,
  type Deploy,
  type PullRequest,
  type Push,
  type ShippedChange,
  shippedId,
} from '../events/model.ts';
import { isChangeOfDeploy } from '../events/ownership.ts';
import type { Settings } from '../events/settings.ts';
import { shipOrder, type EventStore } from '../store/store.ts';

/**
 * Lead time for changes (DESIGN.md, "Metric definitions"): a commit's lead time runs to the first
 * successful production deploy of the service whose deployed history holds the commit. Each
 * commit gets at most one per service, whatever order the deliveries arrive in.
 *
 * A deploy's history is walked back from its sha through the stored pushes (`after` → `before`,
 * every push to a sha, so a branch merged after being pushed on its own is followed too) or a
 * commit's recorded parents. The walk stops at a zero sha (a new branch), after a force push's own
 * commits (its `before` was discarded), and at a sha an earlier deploy of the service deployed
 * (what lies behind it is that deploy's). The commits it finds are the deploy's unless an earlier
 * deploy of the service holds them. A service's first deploy holds its whole history, but only the
 * commits of its own sha's pushes get lead times: the rest was live before.
 * A sha whose push has not arrived is a gap: the deploy waits for it, and is walked again when it
 * arrives (as it is when another push arrives to a sha its walk went through). A pull request whose merge commit is the deployed sha stands in until its push arrives.
 */

/** Shas visited in one walk at the most: a bound on work, far above any real gap between deploys. */
const MAX_WALK = 2000;

const ZERO_SHA = /^0+$/;

/**
 * The pushes to one sha, as the walk uses them: which, with how many commits, forced or not. A push
 * stored later, or one with the same ends that added its commits to a stored one, changes it.
 */
const pushesAt = (pushes: readonly Push[]) =>
  pushes
    .map((p) => `${p.id} ${p.commitShas.length} ${p.forced}`)
    .sort()
    .join('\n');

const seconds = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / 1000;
/** Clock skew can date a commit after its deploy: never a negative duration. */
const elapsed = (from: string, to: string) => Math.max(0, seconds(from, to));

/** Whether a deploy has lead times at all: successful, to production, with a commit to follow, not future-dated. */
export function shipsChanges(settings: Settings, deploy: Deploy): boolean {
  return (
    deploy.status === 'success' &&
    deploy.futureDated !== true &&
    settings.productionEnvironments.includes(deploy.environment) &&
    deploy.commitSha !== undefined &&
    deploy.repository !== undefined
  );
}

interface Resolution {
  /** The commits the deploy ships first: each gets its lead time. */
  shipped: ShippedChange[];
  /**
   * A service's first deploy holds its whole history, but only the commits of its own pushes get
   * lead times (the rest was live before DevStats saw a deploy): these hold the rest, counted nowhere.
   */
  baseline: ShippedChange[];
  /** Shas the walk went through: a push to one of them later may change what the deploy ships. */
  watching: string[];
  /** Of those, the shas whose pushes the walk needed and did not find (gaps). */
  waitingFor: string[];
  /** What the walk found pushed to each sha it went through (`pushesAt`): a change there may change what it ships. */
  pushesSeen: Map<string, string>;
  /** No earlier shipping deploy of the service. */
  first: boolean;
  /** When the walk read the history in bulk: the shas whose pushes it read so (rechecked so too). */
  window?: { since: string; shas: Set<string> };
}

/** Shas a walk visits one by one before it reads the repository's history in bulk. */
const WALK_ALONE = 10;
/** Commits read at once when it does. */
const WINDOW_COMMITS = 1000;
/**
 * How far a commit's own timestamp may run ahead of its push or its deploy (clock skew): the bulk
 * reads of pushes and deploys start that much before the oldest commit read.
 */
const SKEW_MS = 86_400_000;

/**
 * A repository's history read in bulk, for a long walk (a first deploy after a backfill goes
 * through thousands of shas, each otherwise three reads in a row): its commits a page at a time,
 * newest first, and every push and shipping deploy of the repository since the oldest of them (less
 * `SKEW_MS`). A sha whose commit is in a page is answered from it, exactly as the store would
 * answer; any other goes to the store on its own.
 */
class HistoryWindow {
  private readonly commits = new Map<string, Commit>();
  private readonly pushes = new Map<string, Push[]>();
  private readonly deploys = new Map<string, Deploy[]>();
  /** The oldest commit timestamp read: pushes and deploys are read from it less SKEW_MS. */
  private oldest: string | undefined;
  private exhausted = false;
  private readonly store: EventStore;
  private readonly repository: string;
  private readonly to: string;

  constructor(store: EventStore, repository: string, to: string) {
    this.store = store;
    this.repository = repository;
    this.to = new Date(Date.parse(to) + SKEW_MS).toISOString();
  }

  /** From when pushes and deploys were read. */
  get since(): string {
    return new Date(Date.parse(this.oldest ?? this.to) - SKEW_MS).toISOString();
  }

  /** Whether `sha`'s commit is in a page read (and so its pushes and deploys with it). */
  covers(sha: string): boolean {
    return this.commits.has(sha);
  }

  /** Reads the next page of commits, older than those read, and the pushes and deploys since then. */
  async extend(): Promise<void> {
    if (this.exhausted) return;
    const page = await this.store.commitsBefore(this.repository, this.oldest ?? this.to, WINDOW_COMMITS);
    // A page ending on a timestamp shared with the next: kept whole, the next starts after it.
    const last = page.at(-1)?.timestamp;
    const whole = page.length < WINDOW_COMMITS ? page : page.filter((c) => c.timestamp !== last);
    if (page.length < WINDOW_COMMITS || whole.length === 0) this.exhausted = true;
    const kept = whole.length === 0 ? page : whole;
    for (const commit of kept) this.commits.set(commit.sha, commit);
    this.oldest = kept.at(-1)?.timestamp ?? this.oldest;
    const [pushes, deploys] = await Promise.all([
      this.store.pushesSince(this.repository, this.since),
      this.store.shippingDeploysSince(this.repository, this.since),
    ]);
    this.pushes.clear();
    for (const push of pushes) this.pushes.set(push.after, [...(this.pushes.get(push.after) ?? []), push]);
    this.deploys.clear();
    for (const d of deploys)
      if (d.commitSha !== undefined) this.deploys.set(d.commitSha, [...(this.deploys.get(d.commitSha) ?? []), d]);
  }

  /** What the walk reads at a covered sha, as the store would give it. */
  at(sha: string): { deploys: Deploy[]; pushes: Push[]; commit: Commit | undefined } {
    return {
      deploys: [...(this.deploys.get(sha) ?? [])].sort((a, b) => (shipOrder(a) < shipOrder(b) ? -1 : 1)),
      pushes: this.pushes.get(sha) ?? [],
      commit: this.commits.get(sha),
    };
  }

  get more(): boolean {
    return !this.exhausted;
  }

  /** Whether a page was read yet: past the first, pages are read only for a commit's parents. */
  get started(): boolean {
    return this.oldest !== undefined || this.exhausted;
  }
}

/** What one deploy ships, as far as the stored history tells now. */
async function resolveShipped(store: EventStore, settings: Settings, deploy: Deploy): Promise<Resolution> {
  const repository = deploy.repository;
  const sha = deploy.commitSha;
  const resolution: Resolution = {
    shipped: [],
    baseline: [],
    watching: [],
    waitingFor: [],
    first: false,
    pushesSeen: new Map(),
  };
  if (!shipsChanges(settings, deploy) || repository === undefined || sha === undefined) return resolution;
  const order = shipOrder(deploy);
  const earlierOf = (deploys: readonly Deploy[]) =>
    deploys.some((d) => d.service === deploy.service && shipOrder(d) < order);
  const deployedEarlier = async (at: string) => earlierOf(await store.shippingDeploysAt(repository, at));
  /** What the walk reads at a sha: whether an earlier deploy shipped it, its pushes, its commit. */
  const visit = (at: string) =>
    Promise.all([
      // A service's first shipping deploy has no earlier one anywhere: nothing to ask.
      resolution.first ? false : deployedEarlier(at),
      store.pushesTo(repository, at),
      store.commits(repository, [at]),
    ]);
  // The deployed sha's own reads go beside the previous deploy's: one round trip fewer. (Wasted
  // only when the previous deploy is of the same sha, a redeploy: then nothing is walked.)
  const [previous, atSha] = await Promise.all([
    store.previousShippingDeploy(deploy.service, order),
    Promise.all([deployedEarlier(sha), store.pushesTo(repository, sha), store.commits(repository, [sha])]),
  ]);
  resolution.first = previous === undefined;
  // Past WALK_ALONE shas, the history is read in bulk (HistoryWindow), page by page as the walk needs.
  let window: HistoryWindow | undefined;
  const windowShas = new Set<string>();
  /** Reached as a commit's parent: its commit is expected to be stored, so a page may hold it. */
  const viaParent = new Set<string>();
  const read = async (at: string) => {
    if (window === undefined && visited.size > WALK_ALONE)
      window = new HistoryWindow(store, repository, deploy.finishedAt);
    if (window !== undefined && !window.covers(at) && window.more && (viaParent.has(at) || !window.started))
      await window.extend();
    if (window === undefined || !window.covers(at)) return visit(at);
    windowShas.add(at);
    const { deploys, pushes, commit } = window.at(at);
    return [!resolution.first && earlierOf(deploys), pushes, commit === undefined ? [] : [commit]] as const;
  };
  // The walk usually ends at the previous deploy's sha: known without asking the store.
  const previousAt = (at: string) => previous?.repository === repository && previous.commitSha === at;

  const found = new Set<string>();
  /** The commits of the pushes (or the commit) of the deployed sha itself. */
  const own = new Set<string>();
  const visited = new Set<string>();
  const queue = [sha];
  while (queue.length > 0 && visited.size < MAX_WALK) {
    const at = queue.shift() ?? '';
    if (visited.has(at) || ZERO_SHA.test(at)) continue;
    visited.add(at);
    if (previousAt(at)) continue; // the previous deploy's history
    const [earlier, pushes, [commit]] = at === sha ? atSha : await read(at);
    if (earlier) continue; // a redeploy, a rollback, or the previous deploy's history
    resolution.watching.push(at);
    resolution.pushesSeen.set(at, pushesAt(pushes));
    if (pushes.length === 0 && commit?.parents === undefined) {
      resolution.waitingFor.push(at);
      continue;
    }
    for (const push of pushes) {
      for (const c of push.commitShas) {
        found.add(c);
        if (at === sha) own.add(c);
      }
      if (!push.forced) queue.push(push.before);
      else {
        // What a force push kept lies under its oldest commit; only recorded parents say where.
        const oldest = push.commitShas[0];
        const parents = oldest === undefined ? [] : (await store.commits(repository, [oldest]))[0]?.parents;
        if (parents !== undefined) queue.push(...parents);
      }
    }
    if (commit?.parents !== undefined) {
      found.add(at);
      if (at === sha) own.add(at);
      queue.push(...commit.parents);
      for (const parent of commit.parents) viaParent.add(parent);
    }
  }
  if (window !== undefined) resolution.window = { since: window.since, shas: windowShas };

  if (resolution.waitingFor.includes(sha)) {
    // No push recorded the deployed sha: a merged pull request's merge commit stands for its commits.
    const pr = await store.pullRequestByMergeSha(repository, sha);
    if (pr !== undefined)
      resolution.shipped = [shippedChange(deploy, repository, sha, 'pull_request', pr.createdAt, pr)];
    return resolution;
  }

  const counted = resolution.first ? [...found].filter((c) => own.has(c)) : [...found];
  if (resolution.first) {
    resolution.baseline = [...found]
      .filter((c) => !own.has(c))
      .map((c) => shippedChange(deploy, repository, c, 'push', deploy.finishedAt, undefined));
  }
  const [commits, pullRequests] = await Promise.all([
    store.commits(repository, counted),
    store.pullRequestsByMergeShas(repository, counted),
  ]);
  const commitBySha = new Map<string, Commit>(commits.map((c) => [c.sha, c]));
  const prBySha = new Map<string, PullRequest>(pullRequests.map((p) => [p.mergeCommitSha, p]));
  for (const commitSha of counted) {
    const commit = commitBySha.get(commitSha);
    if (commit === undefined) continue; // a push lists it, but no commit record came with it
    // In a repository divided by paths, only the commits that touched the service's (files unknown: kept).
    if (!isChangeOfDeploy(settings, deploy, commit)) continue;
    resolution.shipped.push(
      shippedChange(deploy, repository, commitSha, 'push', commit.timestamp, prBySha.get(commitSha)),
    );
  }
  return resolution;
}

function shippedChange(
  deploy: Deploy,
  repository: string,
  sha: string,
  via: ShippedChange['via'],
  committedAt: string,
  pr: PullRequest | undefined,
): ShippedChange {
  return {
    id: shippedId(deploy.service, repository, sha),
    deployId: deploy.id,
    service: deploy.service,
    environment: deploy.environment,
    repository,
    sha,
    via,
    committedAt,
    deployedAt: deploy.finishedAt,
    leadTimeSeconds: elapsed(committedAt, deploy.finishedAt),
    ...(pr === undefined
      ? {}
      : {
          pullRequest: {
            number: pr.number,
            createdAt: pr.createdAt,
            mergedAt: pr.mergedAt,
            reviewSeconds: elapsed(pr.createdAt, pr.mergedAt),
            timeToDeploySeconds: elapsed(pr.mergedAt, deploy.finishedAt),
          },
        }),
  };
}

/** Later deploys walked again after one deploy released commits: a bound, as MAX_WALK is. */
const MAX_FOLLOWERS = 50;

/**
 * Resolves what a deploy ships and records it, then walks again the other deploys of the service
 * its arrival may change: the next one when this deploy is the service's first (that one is first
 * no more, and ships its whole history since); every one it passed when a later report moved it
 * (`previous`, the report it replaced); and later ones while commits it gave up have no holder.
 * Returns the shipped changes whose points are still to send.
 */
export async function settleLeadTime(
  store: EventStore,
  settings: Settings,
  deploy: Deploy,
  previous?: Deploy,
): Promise<ShippedChange[]> {
  const toExport: ShippedChange[] = [];
  let resolution = await resolveShipped(store, settings, deploy);
  let recorded = await store.recordShipped(deploy, resolution);
  // The stored report is the truth: another delivery of this deploy may have replaced it since it
  // was read. A push stored while this walk ran may have missed the wait written just now, and an
  // earlier deploy stored meanwhile (another delivery, handled at the same time) may have made this
  // one first no more, or re-walked it before this stale walk was recorded: look again. The later
  // deploys resolved as first are read alongside (see below), for the order they were read for.
  let laterFirst: { order: string; deploys: Deploy[] } | undefined;
  for (let again = 0; again < 5; again++) {
    const checked = shipOrder(deploy);
    const [stored = deploy, changed, later] = await Promise.all([
      store.deploy(deploy.id),
      changedMeanwhile(store, settings, deploy, resolution),
      store.laterFirstDeploys(deploy.service, checked),
    ]);
    laterFirst = { order: checked, deploys: later };
    // A stored report changes only for one that finished later (`supersedes`).
    const replaced = stored.finishedAt !== deploy.finishedAt;
    if (!replaced && !changed) break;
    if (replaced) previous ??= deploy;
    deploy = stored;
    toExport.push(...recorded.toExport);
    resolution = await resolveShipped(store, settings, deploy);
    recorded = await store.recordShipped(deploy, resolution);
  }
  toExport.push(...recorded.toExport);

  const order = shipOrder(deploy);
  const was = previous !== undefined && shipsChanges(settings, previous) ? shipOrder(previous) : order;
  // Every deploy between where it was and where it is now lost or gained it as an earlier deploy.
  const passed = was > order ? was : order;
  // Deploys resolved as the service's first that come after this one are first no more: walk
  // them again (one per arrival is not enough: several earlier deploys may arrive together).
  // (Read once this deploy was stored, which is enough: a later deploy that records itself as
  // first after this read looks again after recording, as above, and finds this one.)
  const laterFirstDeploys =
    laterFirst?.order === order ? laterFirst.deploys : await store.laterFirstDeploys(deploy.service, order);
  for (const later of laterFirstDeploys) {
    if (later.id === deploy.id) continue;
    const again = await resolveShipped(store, settings, later);
    toExport.push(...(await store.recordShipped(later, again)).toExport);
  }
  const released = new Set(recorded.released);
  let cursor = was < order ? was : order;
  let next: Deploy | undefined;
  for (let followers = 0; followers < MAX_FOLLOWERS; followers++) {
    const needed = released.size > 0 || cursor < passed;
    if (!needed) break;
    [next] = await store.nextShippingDeploys(deploy.service, cursor, 1);
    if (next === undefined) break;
    cursor = shipOrder(next);
    if (next.id === deploy.id) continue;
    const again = await resolveShipped(store, settings, next);
    const result = await store.recordShipped(next, again);
    toExport.push(...result.toExport);
    for (const change of [...again.shipped, ...again.baseline]) released.delete(change.id);
    for (const id of result.released) released.add(id);
  }
  return toExport;
}

async function changedMeanwhile(
  store: EventStore,
  settings: Settings,
  deploy: Deploy,
  resolution: Resolution,
): Promise<boolean> {
  if (!shipsChanges(settings, deploy)) return false;
  const [previous, arrived] = await Promise.all([
    store.previousShippingDeploy(deploy.service, shipOrder(deploy)),
    anyArrived(store, deploy, resolution),
  ]);
  return (previous === undefined) !== resolution.first || arrived;
}

/** Shas whose pushes are counted again at once, after recording. */
const RECHECK_AT_ONCE = 30;

async function anyArrived(store: EventStore, deploy: Deploy, resolution: Resolution): Promise<boolean> {
  const repository = deploy.repository;
  const sha = deploy.commitSha;
  if (repository === undefined || sha === undefined) return false;
  // A push stored while the walk ran, to a sha it went through, looked for the deploys watching that
  // sha before this one recorded it: read again here, after recording, against what the walk found
  // there (a gap found none; a sha a forced reset reached may gain the push that brought its commits).
  let watching = resolution.watching;
  const window = resolution.window;
  if (window !== undefined) {
    // The shas the walk read in bulk are read again so: every push since the same time.
    const now = new Map<string, Push[]>();
    for (const push of await store.pushesSince(repository, window.since))
      now.set(push.after, [...(now.get(push.after) ?? []), push]);
    if (watching.some((at) => window.shas.has(at) && pushesAt(now.get(at) ?? []) !== resolution.pushesSeen.get(at)))
      return true;
    watching = watching.filter((at) => !window.shas.has(at));
  }
  for (let i = 0; i < watching.length; i += RECHECK_AT_ONCE) {
    const shas = watching.slice(i, i + RECHECK_AT_ONCE);
    const now = await Promise.all(shas.map(async (at) => pushesAt(await store.pushesTo(repository, at))));
    if (now.some((pushed, j) => pushed !== resolution.pushesSeen.get(shas[j] ?? ''))) return true;
  }
  // Waiting on its own sha with nothing shipped: a pull request may stand in now.
  if (resolution.shipped.length > 0 || !resolution.waitingFor.includes(sha)) return false;
  return (await store.pullRequestByMergeSha(repository, sha)) !== undefined;
}
