import type {
  CanonicalEvent,
  Change,
  Commit,
  Deploy,
  EventKind,
  Incident,
  PullRequest,
  Push,
  ShippedChange,
} from '../events/model.ts';

/** What a write did: the same fact arriving twice is `unchanged` the second time. */
export type PutResult = 'created' | 'updated' | 'unchanged';

/** What `putDeploy` did, and the report it found stored (none when it created the deploy). */
export interface PutDeployResult {
  result: PutResult;
  before: Deploy | undefined;
  /** The deploy was created with its export claimed until `claimUntil` (see putDeploy). */
  claimed?: true;
}

export interface EventFilter {
  kind?: EventKind;
  /** Only events at or after this UTC time (a deploy's finishedAt, a commit's timestamp…). */
  since?: string;
}

/**
 * Where canonical events live, exactly once each. Two implementations (Firestore, SQLite) pass
 * one contract suite (test/contract/store.test.ts). Every lookup is by key or by an index.
 */
export interface EventStore {
  /**
   * Creates the deploy if absent. A deploy already stored is replaced only by a report that
   * finished later (a later terminal status of the same GitHub deployment); an older or equal
   * one changes nothing. `shipsChanges` marks a deploy that ships commits (successful, to
   * production, with a sha): those are ordered per service by `shipOrder` for lead time.
   * Returns, with what it did, the deploy stored before (read in the same transaction).
   * With `claimUntil`, a deploy it creates is created with its export claimed until then (as
   * `claimDeployExport` would claim it, in the same write: one round trip fewer on every new deploy).
   */
  putDeploy(deploy: Deploy, options: { shipsChanges: boolean; claimUntil?: string }): Promise<PutDeployResult>;
  deploy(id: string): Promise<Deploy | undefined>;
  /**
   * Creates a commit, pull request or push if absent; never changes a stored one, but for two
   * things: a commit stored from another branch takes `onDefaultBranch`'s branch when a push to a
   * default branch lists it (so its author counts as an active developer), and a push with the
   * same ends as a stored one adds its commits (`mergePush`).
   */
  putChange(change: Change, options?: { onDefaultBranch?: boolean }): Promise<PutResult>;
  /**
   * `putChange` for each change, with the results and the stored state of putting them one after
   * the other, in order (a change twice sees itself); in as few round trips as the store allows.
   * A push and its commits arrive together: Firestore reads them in one `getAll` and writes them in
   * one commit, where one transaction each took two round trips per change.
   */
  putChanges(changes: ReadonlyArray<{ change: Change; onDefaultBranch?: boolean }>): Promise<PutResult[]>;

  /**
   * Stores an incident update: created if absent, else merged into the stored incident
   * (`mergeIncident`), so updates arriving in any order, or twice, leave the same incident.
   * Returns what the store holds now.
   */
  putIncident(incident: Incident): Promise<{ result: PutResult; incident: Incident }>;
  incident(id: string): Promise<Incident | undefined>;
  /** Incidents that started in [from, to), oldest first. */
  incidentsBetween(from: string, to: string): Promise<Incident[]>;

  /** The last successful deploy of a service to an environment that finished before `before`. */
  previousSuccessfulDeploy(service: string, environment: string, before: string): Promise<Deploy | undefined>;
  /** The first successful deploy of a service to an environment that finished after `after`. */
  nextSuccessfulDeploy(service: string, environment: string, after: string): Promise<Deploy | undefined>;
  /** The shipping deploy of a service just before `order` (a `shipOrder`), if any. */
  previousShippingDeploy(service: string, order: string): Promise<Deploy | undefined>;
  /** Shipping deploys of a service after `order`, earliest first, at most `limit`. */
  nextShippingDeploys(service: string, order: string, limit: number): Promise<Deploy[]>;
  /** Shipping deploys of a service after `order` that were resolved as the service's first. */
  laterFirstDeploys(service: string, order: string): Promise<Deploy[]>;
  /** Shipping deploys (of any service) of a repository at a sha. */
  shippingDeploysAt(repository: string, sha: string): Promise<Deploy[]>;
  /** The pushes to a repository whose `after` is `sha` (one per branch it was pushed to), by pushedAt then id. */
  pushesTo(repository: string, sha: string): Promise<Push[]>;
  /**
   * A repository's history in bulk, for a long lead-time walk (metrics/lead-time.ts, `HistoryWindow`):
   * its commits with a timestamp at or before `at`, newest first, at most `limit`.
   */
  commitsBefore(repository: string, at: string, limit: number): Promise<Commit[]>;
  /** A repository's pushes pushed at or after `since`, by pushedAt then id. */
  pushesSince(repository: string, since: string): Promise<Push[]>;
  /** Shipping deploys (of any service) of a repository finished at or after `since`. */
  shippingDeploysSince(repository: string, since: string): Promise<Deploy[]>;
  commit(repository: string, sha: string): Promise<Commit | undefined>;
  /** The stored commits among `shas`, in one round trip where the store can. */
  commits(repository: string, shas: readonly string[]): Promise<Commit[]>;
  pullRequestByMergeSha(repository: string, sha: string): Promise<PullRequest | undefined>;
  /** The merged pull requests whose merge commit is among `shas`. */
  pullRequestsByMergeShas(repository: string, shas: readonly string[]): Promise<PullRequest[]>;
  /**
   * Deploys whose shipped commits depend on the pushes to `sha` of a repository: its walk went
   * through `sha`, or stopped there for want of a push (a gap) or waits on a pull request's merge.
   */
  deploysWatching(repository: string, sha: string): Promise<Deploy[]>;
  /**
   * Makes `shipped` (and `baseline`) what `deploy` holds, in one transaction: each commit is held by
   * the earliest deploy (by `shipOrder`) that holds it, so a change held by a later deploy is taken
   * over (its export state kept: a point already sent is not sent again) and one held by an earlier
   * deploy is left alone; what the deploy held and holds no more is released. `baseline` changes are
   * held, never counted nor exported (a first deploy's history before its own push). `watching` are
   * the shas whose pushes the result depends on (`deploysWatching`). Returns the changes whose
   * points are still to send, and the ids released (a later deploy may hold them now).
   */
  recordShipped(deploy: Deploy, record: ShippedRecord): Promise<{ toExport: ShippedChange[]; released: string[] }>;
  shippedBy(deployId: string): Promise<ShippedChange[]>;
  /** Shipped changes whose deploy finished in [from, to), oldest first. */
  shippedBetween(from: string, to: string): Promise<ShippedChange[]>;

  /** Deploys that finished in [from, to), oldest first; optionally of one service and environment. */
  deploysBetween(from: string, to: string, of?: { service: string; environment: string }): Promise<Deploy[]>;
  /** Commits (by timestamp) or merged pull requests (by mergedAt) in [from, to). */
  commitsBetween(from: string, to: string): Promise<Commit[]>;
  pullRequestsBetween(from: string, to: string): Promise<PullRequest[]>;

  /** A backfill's place in one scope of one source (a page, a token, or "done"), so a run resumes. */
  backfillCursor(key: string): Promise<string | undefined>;
  putBackfillCursor(key: string, value: string): Promise<void>;

  /** When a delivery of `source` was last processed: the later of the stored time and `at` stays. */
  noteSourceSeen(source: string, at: string): Promise<void>;
  /** Each source's last delivery, as noted: for the live view, `devstats doctor` and rollup's gauge. */
  sourcesSeen(): Promise<Record<string, string>>;

  /** What the store holds, oldest first: for `devstats events`. */
  events(filter: EventFilter): Promise<CanonicalEvent[]>;
  close(): Promise<void>;
}

/**
 * The exactly-once bookkeeping of the export (DESIGN.md, "Datadog mapping"): who may send a
 * stored fact now (a claim, lapsing after `CLAIM_MS`), what of it went, what is in doubt, what
 * Datadog refused for good. Kept beside the events (a claim and the fact it covers are written in
 * one transaction), behind an interface of its own: only the exporter, rollup's retry and
 * `devstats replay` use it.
 */
export interface ExportLedger {
  /** Whether a stored deploy's export has finished; undefined when no such deploy is stored. */
  deployExported(deployId: string): Promise<boolean | undefined>;
  /**
   * Claims the export of an unexported deploy until `until`, unless another exporter (another
   * instance, or `rollup`'s retry sweep) holds an unexpired claim: the parts of its export already
   * sent (by an export that stopped part-way) when this caller may export, else undefined. A claim
   * lapses by itself, so an exporter that died leaves the deploy to the next sweep.
   */
  claimDeployExport(deployId: string, now: string, until: string): Promise<string[] | undefined>;
  /** Records the parts of a deploy's export that went, when the rest did not. */
  markDeployParts(deployId: string, parts: string[]): Promise<void>;
  /** The same for shipped changes: returns the ids this caller may export. */
  claimShippedExport(ids: string[], now: string, until: string): Promise<string[]>;
  /** Gives claims back after a failed export, so a redelivery may export at once. */
  releaseExportClaims(deployIds: string[], shippedIds: string[], itemIds?: string[]): Promise<void>;

  /**
   * Other facts sent to Datadog once each (a restore: its time to restore and DORA failure):
   * created if absent; one not sent yet takes the new body (a later delivery knew better).
   */
  putExportItems(items: ExportItem[]): Promise<void>;
  /** Claims items as `claimShippedExport` does: the ids this caller may export. */
  claimExportItems(ids: string[], now: string, until: string): Promise<string[]>;
  markItemsExported(ids: string[]): Promise<void>;
  /** Items not sent yet, oldest first. */
  unexportedItems(limit: number): Promise<ExportItem[]>;

  /**
   * Parks exports Datadog refused for good (a 400): they are sent no more, and block nothing,
   * until `unparkExports` (`devstats replay`) gives them another try.
   */
  parkExports(exports: ExportRef[], reason: string, at: string): Promise<void>;
  /**
   * Datadog adds distribution values up and cannot take one back: a shipped change or item is
   * marked in doubt just before its values go, and marked exported after. One that stays in doubt
   * (the exporter died while its request was in flight) is never sent again: a value may be
   * missing, never counted twice. `clearExportsInDoubt` undoes the mark after a definite failure.
   */
  markExportsInDoubt(exports: ExportRef[]): Promise<void>;
  clearExportsInDoubt(exports: ExportRef[]): Promise<void>;
  parkedExports(limit: number): Promise<ParkedExport[]>;
  /** Makes every parked export due again; returns how many. */
  unparkExports(): Promise<number>;
  /** Marks a deploy's own export (count, duration, restore time, event, DORA record) done. */
  markDeployExported(deployId: string): Promise<void>;
  /** Marks shipped changes' distributions (lead time, PR times) sent. */
  markShippedExported(ids: string[]): Promise<void>;
  /** Deploys whose export has not finished, oldest first: `rollup` retries them. */
  unexportedDeploys(limit: number): Promise<Deploy[]>;
  /** Shipped changes whose distributions have not been sent, oldest first. */
  unexportedShipped(limit: number): Promise<ShippedChange[]>;

  /**
   * Gives back the claims of exports that did not finish, and says how many: for the embedded mode
   * at start, where this process is the only exporter of its store, so a claim left by a run that
   * was killed holds nothing up. A store that instances share (Firestore) gives back none: another
   * instance may be exporting, and its claims lapse by themselves.
   */
  releaseClaimsOfEarlierRun(): Promise<number>;
}

/** What the two backends are: an event store with its export ledger. */
export type Store = EventStore & ExportLedger;

/** Which export: a deploy's own, a shipped change's, or an export item's. */
export interface ExportRef {
  kind: 'deploy' | 'shipped' | 'item';
  id: string;
}
export interface ParkedExport extends ExportRef {
  reason: string;
  at: string;
}

/** A fact to send once that is neither a deploy nor a shipped change; `at` orders them. */
export interface ExportItem {
  id: string;
  at: string;
  body: Record<string, unknown>;
}

/** What one deploy holds, as `recordShipped` stores it. */
export interface ShippedRecord {
  shipped: readonly ShippedChange[];
  baseline: readonly ShippedChange[];
  watching: readonly string[];
  /** Resolved as its service's first deploy: an earlier deploy arriving later must walk it again. */
  first: boolean;
}

/** A store that could not be reached or refused a write: `process` throws, so Pub/Sub redelivers. */
export class StoreUnavailable extends Error {
  override name = 'StoreUnavailable';
}

/** The time an event is filed under. */
export function timeOf(event: CanonicalEvent): string {
  switch (event.kind) {
    case 'deploy':
      return event.finishedAt;
    case 'commit':
      return event.timestamp;
    case 'pull_request':
      return event.mergedAt;
    case 'push':
      return event.pushedAt;
    case 'incident':
      return event.startedAt;
  }
}

/** A total order of deploys: by finish, then id (two deploys may finish in the same millisecond). */
export function shipOrder(deploy: Pick<Deploy, 'finishedAt' | 'id'>): string {
  return `${deploy.finishedAt}|${deploy.id}`;
}

/** Whether `incoming` should replace `stored` (the same deploy reported again). */
export function supersedes(incoming: Deploy, stored: Deploy): boolean {
  return incoming.finishedAt > stored.finishedAt;
}

/** Orders strings by code unit, as SQLite's BINARY collation does, so both stores list alike. */
export function byText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Pushes to one sha, as both stores list them: by pushedAt, then id. */
export function byPushedAt(a: Push, b: Push): number {
  return byText(a.pushedAt, b.pushedAt) || byText(a.id, b.id);
}

/**
 * A push with the same branch and ends as a stored one (the branch moved from `before` to `after`
 * again, say back after a reset): one fact, with every commit either listed, and forced only when
 * both were. Undefined when nothing changes.
 */
export function mergePush(stored: Push, incoming: Push): Push | undefined {
  const commitShas = [...new Set([...stored.commitShas, ...incoming.commitShas])];
  const merged: Push = {
    ...stored,
    commitShas,
    forced: stored.forced && incoming.forced,
    pushedAt: incoming.pushedAt < stored.pushedAt ? incoming.pushedAt : stored.pushedAt,
  };
  return JSON.stringify(merged) === JSON.stringify(stored) ? undefined : merged;
}

/**
 * A stored commit seen again: it takes the default branch when a push to one lists it, and
 * parents or an email the first record lacked. Undefined when nothing changes.
 */
export function mergeCommit(
  stored: Commit,
  incoming: Commit,
  options: { onDefaultBranch?: boolean },
): Commit | undefined {
  const merged: Commit = { ...stored };
  if (options.onDefaultBranch === true && stored.branch !== incoming.branch) merged.branch = incoming.branch;
  if (stored.parents === undefined && incoming.parents !== undefined) merged.parents = incoming.parents;
  if (stored.authorEmail === undefined && incoming.authorEmail !== undefined) merged.authorEmail = incoming.authorEmail;
  if (stored.authorLogin === undefined && incoming.authorLogin !== undefined) merged.authorLogin = incoming.authorLogin;
  // Files once known stay known (the commits API lists none; a push or a lookup does).
  if (stored.paths === undefined && incoming.paths !== undefined) merged.paths = incoming.paths;
  if (stored.revert === undefined && incoming.revert !== undefined) merged.revert = incoming.revert;
  return JSON.stringify(merged) === JSON.stringify(stored) ? undefined : merged;
}

/**
 * One incident from two records of it (the stored one and an update), the same whichever is
 * which: the earliest start; the state, resolution and descriptive fields of the later update (by
 * `updatedAt`, a resolution winning a tie); a field only one of them knows kept. Undefined when
 * the update changes nothing.
 */
export function mergeIncident(stored: Incident, incoming: Incident): Incident | undefined {
  const rank = (i: Incident) => `${i.updatedAt}|${i.state === 'resolved' ? 1 : 0}|${i.resolvedAt ?? ''}`;
  const [older, newer] = rank(incoming) > rank(stored) ? [stored, incoming] : [incoming, stored];
  const merged: Incident = { ...older, ...newer };
  for (const key of ['service', 'severity', 'title', 'deployId', 'sha', 'url'] as const) {
    const value = newer[key] ?? older[key];
    if (value !== undefined) merged[key] = value;
  }
  // A start is known once any update knew it: the earliest known start (a recovery's own time is no start).
  const known = [older, newer].filter((i) => i.startUnknown !== true);
  const starts = (known.length > 0 ? known : [older, newer]).map((i) => i.startedAt).sort();
  merged.startedAt = starts[0] ?? newer.startedAt;
  if (known.length > 0) delete merged.startUnknown;
  if (merged.resolvedAt !== undefined && merged.resolvedAt < merged.startedAt) merged.resolvedAt = merged.startedAt;
  if (newer.withdrawn !== true) delete merged.withdrawn;
  if (newer.state === 'open') delete merged.resolvedAt;
  const ordered = (i: Incident) =>
    JSON.stringify(Object.fromEntries(Object.entries(i).sort(([a], [b]) => byText(a, b))));
  return ordered(merged) === ordered(stored) ? undefined : merged;
}
