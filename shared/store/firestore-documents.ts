import type { EventKind } from '../events/model.ts';

/**
 * How the Firestore store lays out its documents: one collection per kind, keyed by the canonical
 * id, with bookkeeping fields beside each fact (never part of it). Shared by the event store and
 * the export ledger, which write the same documents.
 */

export const COLLECTIONS: Record<EventKind, string> = {
  deploy: 'deploys',
  commit: 'commits',
  pull_request: 'pull_requests',
  push: 'pushes',
  incident: 'incidents',
};
/** The field each collection is ordered and filtered by in time. */
export const TIME_FIELD: Record<EventKind, string> = {
  deploy: 'finishedAt',
  commit: 'timestamp',
  pull_request: 'mergedAt',
  push: 'pushedAt',
  incident: 'startedAt',
};
/** Bookkeeping fields beside each stored fact (never part of it). */
export const SHIPS = '_ships';
export const SHIP_ORDER = '_shipOrder';
export const WATCHING = '_watching';
export const RESOLVED_FIRST = '_resolvedFirst';
export const EXPORTED = '_exported';
export const CLAIM = '_exportClaimUntil';
/** A shipped change no deploy holds now (released, until a later deploy takes it). */
export const HELD = '_held';
/**
 * On a deploy: the shipped documents its last `recordShipped` took (a superset of those it still
 * holds: an earlier deploy may have taken some over since). Read by id in the next one's
 * transaction instead of querying `shipped` for them, so concurrent records of different deploys
 * lock only their own documents. Deploys stored before it existed have none: they are queried.
 */
export const HOLDS = '_holds';
/** False for a first deploy's earlier history: held, never counted nor exported. */
export const COUNTED = '_counted';
/** A deploy's export parts already sent, when it stopped part-way. */
export const PARTS = '_exportedParts';
/** `_exported` of an export Datadog refused for good, and why. */
export const PARKED = 'parked';
/** `_exported` of additive values whose request was in flight: never sent again. */
export const IN_DOUBT = 'doubt';
export const PARKED_BECAUSE = '_parked';
/** Firestore's limit on the values of one `in` filter. */
export const IN_LIMIT = 30;
/** A transaction writes at most 500 documents: a push of GitHub's 2,048 commits takes six. */
export const CHANGES_PER_TRANSACTION = 400;
export const ALREADY_EXISTS = 6;

/** Firestore document ids may not contain `/`; canonical ids do (`owner/name@sha`). */
export const docId = (id: string) => encodeURIComponent(id);

// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names what its query reads
export function withoutInternal<T>(data: Record<string, unknown>): T {
  const {
    [SHIPS]: _ships,
    [SHIP_ORDER]: _order,
    [WATCHING]: _watching,
    [RESOLVED_FIRST]: _resolvedFirst,
    [EXPORTED]: _exported,
    [CLAIM]: _claim,
    [HELD]: _held,
    [HOLDS]: _holds,
    [COUNTED]: _counted,
    [PARTS]: _parts,
    [PARKED_BECAUSE]: _parked,
    ...event
  } = data;
  return event as T;
}
