import type { Deploy, DeployStatus } from '../events/model.ts';
import { knownEnvironments } from '../events/settings.ts';
import type { SeriesPoint } from './sink.ts';
import { accepted, deployTags, envTag, type ExportDeps } from './mapping.ts';
import { METRIC } from './metric-names.ts';

/** Rounds of recount-and-resend of one count bucket before giving the rest to the next export. */
const COUNT_ROUNDS = 5;

/** One `devstats.deploys` bucket: a minute, and the tags of the deploys counted in it. */
interface Bucket {
  minute: number;
  like: Deploy;
  status: DeployStatus;
}

/**
 * The bucket's count, recomputed from the store: every deploy of that minute with the same tags
 * (environments outside the known ones share `env:other`). Cancelled and future-dated deploys are
 * never counted.
 */
async function countPoint(deps: ExportDeps, bucket: Bucket): Promise<SeriesPoint> {
  const { settings } = deps;
  const from = new Date(bucket.minute).toISOString();
  const to = new Date(bucket.minute + 60_000).toISOString();
  const env = envTag(settings, bucket.like.environment);
  const team = bucket.like.team ?? 'none';
  // A known environment is its own tag: the store reads that service's deploys to it (an index),
  // not every deploy of the minute. The rest share `env:other`, so they are read by time alone.
  const known = knownEnvironments(settings).has(bucket.like.environment);
  const of = known ? { service: bucket.like.service, environment: bucket.like.environment } : undefined;
  const count = (await deps.store.deploysBetween(from, to, of)).filter(
    (d) =>
      d.service === bucket.like.service &&
      envTag(settings, d.environment) === env &&
      d.source === bucket.like.source &&
      (d.team ?? 'none') === team &&
      d.status === bucket.status &&
      d.futureDated !== true,
  ).length;
  return {
    metric: METRIC.deploys,
    type: 'count',
    interval: 60,
    timestamp: bucket.minute / 1000,
    value: count,
    tags: [...deployTags(settings, bucket.like), `source:${bucket.like.source}`, `status:${bucket.status}`],
  };
}

const keyOf = (p: SeriesPoint) => `${p.tags.join(',')}@${p.timestamp}`;

/**
 * Sends count buckets so the last value Datadog keeps is the store's: after each send the buckets
 * are counted again and any that changed meanwhile (another exporter, a slower read) sent again.
 * Whoever sends a stale count sees it on the recount, so a stale count never stays the last word.
 */
export async function sendCounts(deps: ExportDeps, buckets: Bucket[]): Promise<void> {
  const now = deps.now();
  const live = buckets.filter((b) => b.status !== 'cancelled' && accepted(b.minute / 1000, now));
  const tagsOf = (b: Bucket) =>
    [b.minute, b.like.service, envTag(deps.settings, b.like.environment), b.like.source, b.like.team, b.status].join(
      '|',
    );
  let pending = [...new Map(live.map((b) => [tagsOf(b), b])).values()];
  let sent = new Map<string, number>();
  for (let round = 0; round < COUNT_ROUNDS && pending.length > 0; round++) {
    const points = await Promise.all(pending.map((b) => countPoint(deps, b)));
    const changed = points.filter((p) => sent.get(keyOf(p)) !== p.value);
    if (changed.length === 0) return;
    await deps.sink.series(changed);
    sent = new Map([...sent, ...changed.map((p) => [keyOf(p), p.value] as const)]);
    pending = pending.filter((_, i) => points[i] !== undefined && changed.includes(points[i]));
  }
}

export function bucketOf(deploy: Deploy): Bucket {
  return { minute: Math.floor(Date.parse(deploy.finishedAt) / 60_000) * 60_000, like: deploy, status: deploy.status };
}
