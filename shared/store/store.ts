import type { CanonicalEvent, Change, Commit, Deploy, EventKind, PullRequest, Push, ShippedChange } from '../events.ts';

/** What a write did: the same fact arriving twice is `unchanged` the second time. */
export type PutResult = 'created' | 'updated' | 'unchanged';

export interface EventFilter {
  kind?: EventKind;
  /** Only events at or after this UTC time (a deploy's finishedAt, a commit's timestamp…). */
  since?: string;
}

/**
 * Where canonical events live, exactly once each. Two implementations (Firestore, SQLite) pass
 * one contract suite (test/contract/store.test.ts). Every lookup is by key or by an index.
 */
export interface Store {
  /**
   * Creates the deploy if absent. A deploy already stored is replaced only by a report that
   * finished later (a later terminal status of the same GitHub deployment); an older or equal
   * one changes nothing. `awaitingLeadTime` marks a deploy whose shipped commits are still to be
   * resolved (kept across updates until `recordShipped`).
   */
  putDeploy(deploy: Deploy, options: { awaitingLeadTime: boolean }): Promise<PutResult>;
  deploy(id: string): Promise<Deploy | undefined>;
  /** Creates a commit, pull request or push if absent; never changes a stored one. */
  putChange(change: Change): Promise<PutResult>;

  /** The last successful deploy of a service to an environment that finished before `before`. */
  previousSuccessfulDeploy(service: string, environment: string, before: string): Promise<Deploy | undefined>;
  /** The pushes to a repository whose `after` is `sha` (one per branch it was pushed to). */
  pushesTo(repository: string, sha: string): Promise<Push[]>;
  commit(repository: string, sha: string): Promise<Commit | undefined>;
  pullRequestByMergeSha(repository: string, sha: string): Promise<PullRequest | undefined>;
  /** Deploys of a repository still awaiting their lead times (their pushes may arrive later). */
  deploysAwaitingLeadTime(repository: string): Promise<Deploy[]>;
  /** Stores the changes a deploy shipped (once each), clears its `awaitingLeadTime`, returns those new. */
  recordShipped(deployId: string, shipped: ShippedChange[]): Promise<ShippedChange[]>;
  shippedBy(deployId: string): Promise<ShippedChange[]>;
  /** Shipped changes whose deploy finished in [from, to), oldest first. */
  shippedBetween(from: string, to: string): Promise<ShippedChange[]>;

  /** Deploys that finished in [from, to), oldest first; optionally of one service and environment. */
  deploysBetween(from: string, to: string, of?: { service: string; environment: string }): Promise<Deploy[]>;
  /** Commits (by timestamp) or merged pull requests (by mergedAt) in [from, to). */
  commitsBetween(from: string, to: string): Promise<Commit[]>;
  pullRequestsBetween(from: string, to: string): Promise<PullRequest[]>;

  /** Whether a stored deploy's export has finished; undefined when no such deploy is stored. */
  deployExported(deployId: string): Promise<boolean | undefined>;
  /**
   * Claims the export of an unexported deploy until `until`, unless another exporter (another
   * instance, or `rollup`'s retry sweep) holds an unexpired claim: true when this caller may export.
   * A claim lapses by itself, so an exporter that died leaves the deploy to the next sweep.
   */
  claimDeployExport(deployId: string, now: string, until: string): Promise<boolean>;
  /** The same for shipped changes: returns the ids this caller may export. */
  claimShippedExport(ids: string[], now: string, until: string): Promise<string[]>;
  /** Gives claims back after a failed export, so a redelivery may export at once. */
  releaseExportClaims(deployIds: string[], shippedIds: string[]): Promise<void>;
  /** Marks a deploy's own export (count, duration, restore time, event, DORA record) done. */
  markDeployExported(deployId: string): Promise<void>;
  /** Marks shipped changes' distributions (lead time, PR times) sent. */
  markShippedExported(ids: string[]): Promise<void>;
  /** Deploys whose export has not finished, oldest first: `rollup` retries them. */
  unexportedDeploys(limit: number): Promise<Deploy[]>;
  /** Shipped changes whose distributions have not been sent, oldest first. */
  unexportedShipped(limit: number): Promise<ShippedChange[]>;

  /** What the store holds, oldest first: for `devstats events`. */
  events(filter: EventFilter): Promise<CanonicalEvent[]>;
  close(): Promise<void>;
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
  }
}

/** Whether `incoming` should replace `stored` (the same deploy reported again). */
export function supersedes(incoming: Deploy, stored: Deploy): boolean {
  return incoming.finishedAt > stored.finishedAt;
}

/** Orders strings by code unit, as SQLite's BINARY collation does, so both stores list alike. */
export function byText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
