import type { Exporter } from './export.ts';
import type { Logger } from './log.ts';
import { METRIC } from './metric-names.ts';
import {
  activeDevelopers,
  addDays,
  changeFailureRate,
  dayOf,
  deploysPerDeveloperPerDay,
  startOfDay,
  successfulProductionDeploys,
  teamScopes,
  windowEndingOn,
} from './metrics.ts';
import type { Settings } from './settings.ts';
import type { DatadogSink, SeriesPoint } from './sinks/datadog.ts';
import type { Store } from './store/store.ts';

export interface RollupDeps {
  store: Store;
  sink: DatadogSink;
  settings: Settings;
  logger: Logger;
  exporter: Exporter;
  now: () => Date;
}

export interface TeamFigures {
  team: string;
  day: string;
  developers: number;
  deploys: { '1d': number; '7d': number; '28d': number };
  deploysPerDeveloperPerDay: { '1d'?: number; '7d'?: number; '28d'?: number };
  changeFailureRate?: number;
}

const WINDOWS = [
  ['1d', 1],
  ['7d', 7],
  ['28d', 28],
] as const;

/**
 * One rollup: retry exports that did not finish, then compute today's figures (in the reporting
 * time zone) for every team and `all` from the store, and upsert them as gauges.
 */
export async function rollup(
  deps: RollupDeps,
): Promise<{ figures: TeamFigures[]; retried: { deploys: number; shipped: number } }> {
  const { store, settings, sink, logger } = deps;
  const retried = await deps.exporter.retryPending();
  const now = deps.now();
  const day = dayOf(now, settings.timezone);
  const to = windowEndingOn(day, 1, settings.timezone).to;
  // Twice the change-failure window, so a rollback's earlier sha is in view.
  const historyFrom = startOfDay(addDays(day, -55), settings.timezone).toISOString();
  const developersFrom = windowEndingOn(day, settings.developerWindowDays, settings.timezone).from;
  const [history, commits, pullRequests] = await Promise.all([
    store.deploysBetween(historyFrom, to),
    store.commitsBetween(developersFrom, to),
    store.pullRequestsBetween(developersFrom, to),
  ]);

  const timestamp = Math.floor(now.getTime() / 1000);
  const points: SeriesPoint[] = [];
  const gauge = (metric: string, value: number, tags: string[]) =>
    points.push({ metric, type: 'gauge', timestamp, value, tags });
  const figures: TeamFigures[] = [];
  for (const scope of teamScopes(settings)) {
    const developers = activeDevelopers(settings, scope, day, commits, pullRequests);
    const team: TeamFigures = {
      team: scope.name,
      day,
      developers,
      deploys: { '1d': 0, '7d': 0, '28d': 0 },
      deploysPerDeveloperPerDay: {},
    };
    gauge(METRIC.developersActive, developers, [`team:${scope.name}`]);
    for (const [window, days] of WINDOWS) {
      const deploys = successfulProductionDeploys(settings, scope, day, days, history);
      team.deploys[window] = deploys;
      const perDeveloper = deploysPerDeveloperPerDay(deploys, days, developers);
      if (perDeveloper === undefined) continue; // no developers: no figure, never a NaN or an infinity
      team.deploysPerDeveloperPerDay[window] = perDeveloper;
      gauge(METRIC.deploysPerDeveloperPerDay, perDeveloper, [`team:${scope.name}`, `window:${window}`]);
    }
    const cfr = changeFailureRate(settings, scope, day, history);
    if (cfr !== undefined) {
      team.changeFailureRate = cfr.rate;
      gauge(METRIC.changeFailureRate, cfr.rate, [`team:${scope.name}`, 'window:28d']);
    }
    figures.push(team);
  }
  await sink.series(points);
  logger.info('rollup done', {
    day,
    teams: figures.length,
    gauges: points.length,
    retriedDeploys: retried.deploys,
    retriedShipped: retried.shipped,
  });
  return { figures, retried };
}
