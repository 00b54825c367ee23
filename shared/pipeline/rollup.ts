import type { Commit, Deploy, Incident, PullRequest, ShippedChange } from '../events/model.ts';
import { type Exporter } from '../export/exporter.ts';
import { bucketOf, sendCounts } from '../export/counts.ts';
import type { Logger } from '../log.ts';
import { METRIC } from '../export/metric-names.ts';
import { activeDevelopers, addDays, dayOf, startOfDay, teamScopes, windowEndingOn } from '../metrics/definitions.ts';
import { changeFailureRate } from '../metrics/failures.ts';
import { periodFigures } from '../metrics/period.ts';
import { reworkRate } from '../metrics/rework.ts';
import type { Settings } from '../events/settings.ts';
import type { DatadogSink, SeriesPoint } from '../export/sink.ts';
import type { Store } from '../store/store.ts';

interface RollupDeps {
  store: Store;
  sink: DatadogSink;
  settings: Settings;
  logger: Logger;
  exporter: Exporter;
  now: () => Date;
  /** Asks GitHub to redeliver what failed since a time (when hooks and a token are configured). */
  redeliverGithub?: (since: string) => Promise<unknown>;
}

interface TeamFigures {
  team: string;
  day: string;
  developers: number;
  deploys: { '1d': number; '7d': number; '28d': number };
  deploysPerDeveloperPerDay: { '1d'?: number; '7d'?: number; '28d'?: number };
  changeFailureRate?: number;
  reworkRate?: number;
}

const WINDOWS = [
  ['1d', 1],
  ['7d', 7],
  ['28d', 28],
] as const;

/** The figures of every team and `all` for one day, from the history loaded around it. */
function figuresFor(
  settings: Settings,
  day: string,
  data: {
    history: Deploy[];
    commits: Commit[];
    pullRequests: PullRequest[];
    incidents: Incident[];
    shipped: ShippedChange[];
  },
): TeamFigures[] {
  return teamScopes(settings).map((scope) => {
    const developers = activeDevelopers(settings, scope, day, data.commits, data.pullRequests);
    const team: TeamFigures = {
      team: scope.name,
      day,
      developers,
      deploys: { '1d': 0, '7d': 0, '28d': 0 },
      deploysPerDeveloperPerDay: {},
    };
    for (const [window, days] of WINDOWS) {
      // The period's figure, as the report computes any period: Σ deploys ÷ Σ daily developers.
      const figures = periodFigures(settings, scope, addDays(day, 1 - days), day, data);
      team.deploys[window] = figures.successfulDeploys;
      // No developers: no figure, never a NaN or an infinity.
      if (figures.deploysPerDeveloperPerDay !== undefined)
        team.deploysPerDeveloperPerDay[window] = figures.deploysPerDeveloperPerDay;
    }
    const cfr = changeFailureRate(settings, scope, day, data.history, 28, data.incidents);
    if (cfr !== undefined) team.changeFailureRate = cfr.rate;
    const rework = reworkRate(settings, scope, windowEndingOn(day, 28, settings.timezone), data);
    if (rework !== undefined) team.reworkRate = rework.rate;
    return team;
  });
}

function gaugesOf(figures: TeamFigures[], timestamp: number): SeriesPoint[] {
  const points: SeriesPoint[] = [];
  const gauge = (metric: string, value: number, tags: string[]) =>
    points.push({ metric, type: 'gauge', timestamp, value, tags });
  for (const team of figures) {
    gauge(METRIC.developersActive, team.developers, [`team:${team.team}`]);
    for (const [window] of WINDOWS) {
      const perDeveloper = team.deploysPerDeveloperPerDay[window];
      if (perDeveloper !== undefined)
        gauge(METRIC.deploysPerDeveloperPerDay, perDeveloper, [`team:${team.team}`, `window:${window}`]);
    }
    if (team.changeFailureRate !== undefined)
      gauge(METRIC.changeFailureRate, team.changeFailureRate, [`team:${team.team}`, 'window:28d']);
    if (team.reworkRate !== undefined) gauge(METRIC.reworkRate, team.reworkRate, [`team:${team.team}`, 'window:28d']);
  }
  return points;
}

/** Within this long after a day ends, `rollup` also sends that day's closing figures. */
const CLOSING_WINDOW_MS = 3600_000;

/**
 * One rollup: retry exports that did not finish (an item that fails never stops the rest), send
 * the last hour's count buckets again (so a stale count an exporter died before correcting never
 * stays), then compute today's figures (in the reporting time zone) for every team and `all`
 * from the store and upsert them as gauges. In the hour after a day ends it also sends that
 * day's closing figures, stamped the day's last second, so each day's gauges are final: a deploy
 * at 23:58 counts in its own day even when the last rollup before midnight ran at 23:55.
 */
export async function rollup(deps: RollupDeps): Promise<{
  figures: TeamFigures[];
  closing?: TeamFigures[];
  retried: { deploys: number; shipped: number };
}> {
  const { store, settings, sink, logger } = deps;
  let retried = { deploys: 0, shipped: 0 };
  try {
    retried = await deps.exporter.retryPending();
  } catch (error) {
    // The gauges go whatever the retries meet: the next rollup retries again.
    logger.error('retrying unfinished exports failed; the gauges go anyway', { error: String(error) });
  }
  const now = deps.now();
  // Once an hour (the first tick after the hour), over the last two hours: GitHub never retries.
  if (deps.redeliverGithub !== undefined && now.getUTCMinutes() < 5) {
    await deps.redeliverGithub(new Date(now.getTime() - 2 * 3600_000).toISOString()).catch((error: unknown) => {
      logger.error('asking GitHub to redeliver failed deliveries did not work; the next hour tries again', {
        error: String(error),
      });
    });
  }
  const day = dayOf(now, settings.timezone);
  const start = startOfDay(day, settings.timezone);
  const closingDay = now.getTime() - start.getTime() < CLOSING_WINDOW_MS ? addDays(day, -1) : undefined;
  const earliest = closingDay ?? day;
  const to = windowEndingOn(day, 1, settings.timezone).to;
  // Twice the change-failure window, so a rollback's earlier sha is in view.
  const historyFrom = startOfDay(addDays(earliest, -55), settings.timezone).toISOString();
  // Each day of the 28d figure counts its own active developers: commits from a developer window before its first day.
  const developersFrom = windowEndingOn(addDays(earliest, -27), settings.developerWindowDays, settings.timezone).from;
  // What the 28 days' deploys shipped: the fix-forwards of the rework rate.
  const shippedFrom = windowEndingOn(earliest, 28, settings.timezone).from;
  const [history, commits, pullRequests, incidents, shipped] = await Promise.all([
    store.deploysBetween(historyFrom, to),
    store.commitsBetween(developersFrom, to),
    store.pullRequestsBetween(developersFrom, to),
    store.incidentsBetween(historyFrom, to),
    store.shippedBetween(shippedFrom, to),
  ]);
  const data = { history, commits, pullRequests, incidents, shipped };

  const hourAgo = new Date(now.getTime() - 3600_000).toISOString();
  await sendCounts(
    { store, sink, settings, logger, now: deps.now },
    history.filter((d) => d.finishedAt >= hourAgo).map(bucketOf),
  );

  const figures = figuresFor(settings, day, data);
  const points = gaugesOf(figures, Math.floor(now.getTime() / 1000));
  const closing = closingDay === undefined ? undefined : figuresFor(settings, closingDay, data);
  if (closing !== undefined) points.push(...gaugesOf(closing, Math.floor(start.getTime() / 1000) - 1));
  // How long each source has been silent: a monitor says when a webhook has stopped arriving.
  for (const [source, at] of Object.entries(await store.sourcesSeen())) {
    points.push({
      metric: METRIC.sourceSilence,
      type: 'gauge',
      timestamp: Math.floor(now.getTime() / 1000),
      value: Math.max(0, Math.round((now.getTime() - Date.parse(at)) / 1000)),
      tags: [`source:${source}`],
    });
  }
  await sink.series(points);
  logger.info('rollup done', {
    day,
    timezone: settings.timezone,
    ...(closingDay ? { closingDay } : {}),
    teams: figures.length,
    gauges: points.length,
    retriedDeploys: retried.deploys,
    retriedShipped: retried.shipped,
  });
  return { figures, ...(closing ? { closing } : {}), retried };
}
