import * as z from 'zod';
import type { Deploy } from '../events/model.ts';
import type { Restore } from '../metrics/failures.ts';
import type { ExportItem } from '../store/store.ts';
import { accepted, deployTags, doraFailureOf, epochSeconds, type ExportDeps, restoreId, seconds } from './mapping.ts';
import { METRIC } from './metric-names.ts';

/**
 * What a restore sends (DESIGN.md, "Time to restore"): its closed DORA failure, and its time to
 * restore once. Recorded in the store as an item to send (`restoreItem`) before the deploy that
 * found it is marked exported, so a crash between the two loses none.
 */

/** A stored item's body, read back: a restore. */
export const RestoreItem = z.object({
  kind: z.literal('restore'),
  cause: z.enum(['failed', 'rolled_back']),
  failed: z.custom<Deploy>(),
  restoredBy: z.custom<Deploy>(),
}) satisfies z.ZodType<Restore>;

export function restoreItem(restore: Restore): ExportItem {
  return { id: restoreId(restore.cause, restore.failed), at: restore.restoredBy.finishedAt, body: { ...restore } };
}

/** A restore's closed DORA failure (sent again harmlessly), then its time to restore, once. */
export async function exportRestore(deps: ExportDeps, restore: Restore, id: string): Promise<void> {
  const { settings, sink } = deps;
  await sink.doraFailure(doraFailureOf(settings, restore.cause, restore.failed, restore.restoredBy));
  const tags = deployTags(settings, restore.failed);
  // A change-caused failure: DORA's failed deployment recovery time too, in the same request.
  await sendRestoreTime(deps, id, restore.failed.finishedAt, restore.restoredBy.finishedAt, [...tags, 'cause:deploy'], {
    metric: METRIC.failedDeploymentRecoveryTime,
    tags: tags.filter((t) => !t.startsWith('env:')),
  });
}

/**
 * One time-to-restore value, once: marked in doubt while in flight (see markExportsInDoubt), and
 * kept in the store only when older than Datadog takes.
 */
export async function sendRestoreTime(
  deps: ExportDeps,
  id: string,
  from: string,
  to: string,
  tags: string[],
  also?: { metric: string; tags: string[] },
): Promise<void> {
  const finished = epochSeconds(to);
  if (!accepted(finished, deps.now())) return;
  const ref = [{ kind: 'item' as const, id }];
  await deps.store.markExportsInDoubt(ref);
  try {
    const values = [Math.max(0, seconds(from, to))];
    await deps.sink.distributions([
      { metric: METRIC.timeToRestore, timestamp: finished, values, tags },
      ...(also === undefined ? [] : [{ metric: also.metric, timestamp: finished, values, tags: also.tags }]),
    ]);
  } catch (error) {
    await deps.store.clearExportsInDoubt(ref).catch(() => undefined);
    throw error;
  }
}
