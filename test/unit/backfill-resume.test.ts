import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backfillSource, type HistorySource, type Window } from '../../shared/backfill/core.ts';
import type { BusMessage } from '../../shared/bus/bus.ts';
import { memoryLogger } from '../../shared/log.ts';
import type { ProcessOutcome } from '../../shared/pipeline/process.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';

/*
 * The place an interrupted backfill resumes from, for any source (they all page through
 * `backfillSource`): found again by how the command named its window, and gone on with over the
 * window that run fetched, even though "now" has moved since (issue 25).
 */
const PAGES = 3;
function pagedSource(calls: Array<{ from: string | undefined; until: string }>, dieAt?: number): HistorySource {
  return {
    name: 'paged',
    credential: 'PAGED_TOKEN',
    scopes: () => Promise.resolve(['scope-a']),
    async *pages(_scope, from, window) {
      calls.push({ from, until: window.until });
      for (let page = from === undefined ? 1 : Number(from); page <= PAGES; page++) {
        if (page === dieAt) throw new Error('killed');
        yield {
          items: [{ source: 'ci', eventType: 'deploy', deliveryId: `p${page}`, body: { page } }],
          next: page < PAGES ? String(page + 1) : undefined,
        };
        await Promise.resolve();
      }
    },
  };
}

test('an interrupted backfill of a window named by its defaults resumes at its page, over the window it was fetching', async () => {
  const store = new SqliteStore(':memory:');
  const handled: string[] = [];
  const deps = {
    store,
    settings: parseSettings({}),
    logger: memoryLogger(),
    processMessage: (message: BusMessage): Promise<ProcessOutcome> => {
      handled.push(message.attributes.deliveryId ?? '');
      return Promise.resolve({ outcome: 'stored', results: [] });
    },
    progress: { step: () => undefined, done: () => undefined },
    now: () => new Date(),
  };
  const options = { dryRun: false, waits: () => 0 };
  const windowAt = (until: string): Window => ({ since: '2026-06-01T00:00:00.000Z', until, named: 'default|now' });

  const calls: Array<{ from: string | undefined; until: string }> = [];
  await assert.rejects(
    backfillSource(pagedSource(calls, 2), windowAt('2026-12-01T00:00:00.000Z'), deps, options),
    /killed/,
  );
  // Run again later: same command, so the same name; "now" is a day on.
  await backfillSource(pagedSource(calls), windowAt('2026-12-02T00:00:00.000Z'), deps, options);
  assert.deepEqual(calls, [
    { from: undefined, until: '2026-12-01T00:00:00.000Z' },
    { from: '2', until: '2026-12-01T00:00:00.000Z' },
  ]);
  assert.deepEqual(handled, ['p1', 'p2', 'p3'], 'every page once');

  // Finished, the same command later fetches up to its new now: history has grown since.
  handled.length = 0;
  await backfillSource(pagedSource(calls), windowAt('2026-12-03T00:00:00.000Z'), deps, options);
  assert.deepEqual(calls.at(-1), { from: undefined, until: '2026-12-03T00:00:00.000Z' });
  assert.deepEqual(handled, ['p1', 'p2', 'p3']);

  // An explicit window, once done, stays done.
  const explicit = { since: '2026-06-01T00:00:00.000Z', until: '2026-09-01T00:00:00.000Z' };
  await backfillSource(pagedSource(calls), explicit, deps, options);
  handled.length = 0;
  await backfillSource(pagedSource(calls), explicit, deps, options);
  assert.deepEqual(handled, []);
  await store.close();
});
