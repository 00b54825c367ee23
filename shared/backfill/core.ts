import type { BusMessage } from '../bus/bus.ts';
import type { Logger } from '../log.ts';
import type { ProcessOutcome } from '../pipeline/process.ts';
import type { Settings } from '../events/settings.ts';
import { normalizeForStore } from '../sources/index.ts';
import type { EventStore } from '../store/store.ts';

/**
 * `devstats backfill`: the history a source still holds, fetched through its API and handed to
 * `process` as the deliveries its webhooks would have been (the same normalisers, the same
 * deterministic ids), so a live delivery and a backfilled one of the same fact are stored once, and
 * lead times do not depend on the order history arrives in.
 */

/** One delivery as the source's webhook (or Pub/Sub message) would have carried it. */
export interface HistoryItem {
  /** The normaliser's name (`github`, `spinnaker`, …, or `github_history` for commits with parents). */
  source: string;
  eventType: string;
  deliveryId: string;
  body: unknown;
}

/** One page of a scope (a repository, an application, a workspace, a project). */
export interface HistoryPage {
  items: HistoryItem[];
  /** Where the next page starts, stored so an interrupted run resumes there; undefined: the last page. */
  next: string | undefined;
}

export interface Window {
  since: string;
  until: string;
  /**
   * How the command named the window when it left `--since` or `--until` to their defaults (`now`
   * and six months before it, so different on every run), e.g. `default|now`: a re-run of the same
   * command finds the unfinished run's place by it and goes on over that run's window. Undefined
   * when both were given: the window is its own name.
   */
  named?: string;
}

/**
 * Where a scope's backfill stands: the next page, or `done`. A window named by its defaults also
 * keeps the window the run fetched, so a resumed run pages through the same listing (a later
 * `until` would shift every page of a newest-first list).
 */
interface Cursor {
  next: string;
  window?: { since: string; until: string };
}
function parseCursor(value: string | undefined): Cursor | undefined {
  if (value === undefined) return undefined;
  return value.startsWith('{') ? (JSON.parse(value) as Cursor) : { next: value };
}
const formatCursor = (cursor: Cursor): string => (cursor.window === undefined ? cursor.next : JSON.stringify(cursor));

/** A source's history: its scopes, and each scope's pages from a stored place. */
export interface HistorySource {
  name: string;
  /** The token variable and the least permission, named when the API refuses it (401/403). */
  credential: string;
  scopes(window: Window): Promise<string[]>;
  pages(scope: string, from: string | undefined, window: Window): AsyncIterable<HistoryPage>;
}

/** The API refused the token: that source stops, with a message naming the token and the permission. */
export class BackfillDenied extends Error {
  override name = 'BackfillDenied';
}

/** What a backfill did, per source: the figures its progress shows. */
interface BackfillTally {
  source: string;
  scopes: number;
  fetched: number;
  stored: Record<string, number>;
  duplicates: number;
  rejected: number;
  rateLimitWaits: number;
  seconds: number;
  stoppedBecause?: string;
}

interface Progress {
  step(tally: BackfillTally, scope: string, page: number, eta: number | undefined): void;
  done(tally: BackfillTally): void;
}

/** On a terminal: one line per source, redrawn. Otherwise: one JSON line per step. */
export function progressPrinter(write: (text: string) => void, tty: boolean): Progress {
  const describe = (t: BackfillTally) =>
    `${t.source}: ${t.fetched} fetched, ${Object.values(t.stored).reduce((a, b) => a + b, 0)} stored, ${t.duplicates} duplicates, ${t.rateLimitWaits} rate-limit waits`;
  return {
    step(tally, scope, page, eta) {
      if (tty)
        write(
          `\r\x1b[2K${describe(tally)} (${scope}, page ${page}${eta === undefined ? '' : `, about ${Math.ceil(eta)} s left`})`,
        );
      else
        write(
          JSON.stringify({
            step: 'page',
            scope,
            page,
            ...tally,
            ...(eta === undefined ? {} : { etaSeconds: Math.ceil(eta) }),
          }) + '\n',
        );
    },
    done(tally) {
      if (tty)
        write(
          `\r\x1b[2K${describe(tally)}, in ${tally.seconds} s${tally.stoppedBecause ? ` — stopped: ${tally.stoppedBecause}` : ''}\n`,
        );
      else write(JSON.stringify({ step: 'done', ...tally }) + '\n');
    },
  };
}

interface BackfillDeps {
  store: EventStore;
  settings: Settings;
  logger: Logger;
  /** `process` itself: history goes through the same path as a live delivery. */
  processMessage: (message: BusMessage) => Promise<ProcessOutcome>;
  progress: Progress;
  now: () => Date;
  /** Deliveries handled at once. */
  concurrency?: number;
  /** Scope groups (repositories, applications…) fetched at once. */
  groupsAtOnce?: number;
}

/** Runs one source's backfill over a window, resuming each scope where an earlier run stopped. */
export async function backfillSource(
  source: HistorySource,
  window: Window,
  deps: BackfillDeps,
  options: { dryRun: boolean; waits: () => number },
): Promise<BackfillTally> {
  const started = performance.now();
  const tally: BackfillTally = {
    source: source.name,
    scopes: 0,
    fetched: 0,
    stored: {},
    duplicates: 0,
    rejected: 0,
    rateLimitWaits: 0,
    seconds: 0,
  };
  const finish = () => {
    tally.rateLimitWaits = options.waits();
    tally.seconds = Math.round((performance.now() - started) / 100) / 10;
    deps.progress.done(tally);
    return tally;
  };
  let scopes: string[];
  try {
    scopes = await source.scopes(window);
  } catch (error) {
    if (!(error instanceof BackfillDenied)) throw error;
    tally.stoppedBecause = error.message;
    return finish();
  }
  tally.scopes = scopes.length;
  const receivedAt = deps.now().toISOString();
  const concurrency = deps.concurrency ?? 8;
  // Scopes of one group (a repository's commits, then its pull requests, then its deploys) go in
  // order; groups go side by side.
  const groups = new Map<string, string[]>();
  for (const scope of scopes) {
    const group = scope.split(' ')[0] ?? scope;
    groups.set(group, [...(groups.get(group) ?? []), scope]);
  }
  let finished = 0;
  const runScope = async (scope: string) => {
    const key = `${source.name}|${window.named ?? `${window.since}|${window.until}`}|${scope}`;
    const stored = parseCursor(await deps.store.backfillCursor(key));
    // A named window that was done starts over up to the new now; an explicit one stays done.
    if (stored?.next === 'done' && !options.dryRun && window.named === undefined) return;
    const resuming = stored !== undefined && stored.next !== 'done' && !options.dryRun;
    const scopeWindow = resuming && stored.window !== undefined ? { ...window, ...stored.window } : window;
    const place = (next: string) =>
      formatCursor({
        next,
        ...(window.named === undefined ? {} : { window: { since: scopeWindow.since, until: scopeWindow.until } }),
      });
    let page = 0;
    for await (const { items, next } of source.pages(scope, resuming ? stored.next : undefined, scopeWindow)) {
      page++;
      tally.fetched += items.length;
      for (let i = 0; i < items.length; i += concurrency)
        await Promise.all(items.slice(i, i + concurrency).map((item) => handle(item)));
      if (!options.dryRun) await deps.store.putBackfillCursor(key, place(next ?? 'done'));
      tally.rateLimitWaits = options.waits();
      const elapsed = (performance.now() - started) / 1000;
      const eta = finished === 0 ? undefined : (elapsed / finished) * (scopes.length - finished);
      deps.progress.step(tally, scope, page, eta);
    }
    if (!options.dryRun) await deps.store.putBackfillCursor(key, place('done'));
    finished++;
  };
  const queue = [...groups.values()];
  const worker = async () => {
    for (let group = queue.shift(); group !== undefined; group = queue.shift())
      for (const scope of group) await runScope(scope);
  };
  try {
    await Promise.all(Array.from({ length: deps.groupsAtOnce ?? 4 }, worker));
  } catch (error) {
    if (!(error instanceof BackfillDenied)) throw error;
    tally.stoppedBecause = error.message;
  }
  return finish();

  async function handle(item: HistoryItem): Promise<void> {
    if (options.dryRun) {
      // What it would store: the events the normaliser makes, not yet in the store.
      const normalized = normalizeForStore(item.source, item.body, item.eventType, {
        settings: deps.settings,
        receivedAt,
      });
      if (!normalized.ok) {
        tally.rejected++;
        return;
      }
      for (const event of normalized.events) {
        const known =
          event.kind === 'deploy'
            ? (await deps.store.deploy(event.id)) !== undefined
            : event.kind === 'commit'
              ? (await deps.store.commit(event.repository, event.sha)) !== undefined
              : event.kind === 'push'
                ? (await deps.store.pushesTo(event.repository, event.after)).some((p) => p.id === event.id)
                : event.kind === 'pull_request'
                  ? (await deps.store.pullRequestByMergeSha(event.repository, event.mergeCommitSha)) !== undefined
                  : false;
        if (known) tally.duplicates++;
        else tally.stored[event.kind] = (tally.stored[event.kind] ?? 0) + 1;
      }
      return;
    }
    const outcome = await deps.processMessage({
      data: Buffer.from(JSON.stringify(item.body)),
      attributes: { source: item.source, eventType: item.eventType, deliveryId: item.deliveryId, receivedAt },
    });
    if (outcome.outcome === 'rejected') {
      tally.rejected++;
      deps.logger.warn('history item not usable', {
        source: item.source,
        deliveryId: item.deliveryId,
        reason: outcome.reason,
      });
      return;
    }
    for (const { kind, result } of outcome.results) {
      if (result === 'unchanged') tally.duplicates++;
      else tally.stored[kind] = (tally.stored[kind] ?? 0) + 1;
    }
  }
}
