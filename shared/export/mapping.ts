import { createHash } from 'node:crypto';
import type { Deploy } from '../events/model.ts';
import { knownEnvironments, type Settings } from '../events/settings.ts';
import type { Logger } from '../log.ts';
import type { DeployFailure } from '../metrics/failures.ts';
import type { Store } from '../store/store.ts';
import type { DatadogSink, DoraFailure } from './sink.ts';

/**
 * The Datadog mapping (DESIGN.md, "Datadog mapping"): what Datadog accepts, the tags of each
 * point, the ids of DORA records. Pure, apart from the dependencies an export is given.
 */

/** Datadog drops points more than 1 hour old or 10 minutes in the future. */
const OLDEST_ACCEPTED_S = 3600;
const NEWEST_ACCEPTED_S = 600;
/** The events API takes events up to 18 hours old: older ones stay in the store and the report. */
export const OLDEST_EVENT_S = 18 * 3600;
/** An event dated this far past its receipt is stored, never exported. */
export const FUTURE_TOLERANCE_MS = 10 * 60 * 1000;

export interface ExportDeps {
  store: Store;
  sink: DatadogSink;
  settings: Settings;
  logger: Logger;
  now: () => Date;
}

export const epochSeconds = (iso: string) => Math.floor(Date.parse(iso) / 1000);
export const seconds = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / 1000;

export function accepted(timestamp: number, now: Date): boolean {
  const nowS = now.getTime() / 1000;
  return timestamp >= nowS - OLDEST_ACCEPTED_S && timestamp <= nowS + NEWEST_ACCEPTED_S;
}

/** The `env` tag: a known environment by name, any other (`pr-123`) as `other`, so it adds no metrics. */
export function envTag(settings: Settings, environment: string): string {
  return knownEnvironments(settings).has(environment) ? environment : 'other';
}

/** Tags of a deploy's metrics. Never a person's name (DESIGN.md, "Datadog mapping"). */
export function deployTags(settings: Settings, deploy: Deploy): string[] {
  return [`service:${deploy.service}`, `env:${envTag(settings, deploy.environment)}`, `team:${deploy.team ?? 'none'}`];
}

/**
 * Datadog's DORA API takes ids of 16 to 128 characters of `[A-Za-z0-9_.:-]`: a deterministic id
 * that fits is sent as it is; one too short takes a `devstats:` prefix; any other, a digest.
 */
export function doraId(id: string): string {
  if (/^[A-Za-z0-9_.:-]{16,128}$/.test(id)) return id;
  const prefixed = `devstats:${id}`;
  if (/^[A-Za-z0-9_.:-]{16,128}$/.test(prefixed)) return prefixed;
  return `devstats:${createHash('sha256').update(id).digest('hex').slice(0, 40)}`;
}

export function repositoryUrl(repository: string | undefined): string | undefined {
  return repository === undefined ? undefined : `https://github.com/${repository}`;
}

/**
 * The version Datadog's DORA view sees: the deploy's own, else its commit sha. Datadog detects a
 * rollback as a deploy of a version deployed before, the rule DevStats applies to shas.
 */
export const versionOf = (deploy: Pick<Deploy, 'version' | 'commitSha'>): string | undefined =>
  deploy.version ?? deploy.commitSha;

/** The id of the restore of a failed or rolled-back deploy: one per deploy and cause. */
export const restoreId = (cause: DeployFailure['cause'], deploy: Deploy) =>
  `${cause === 'failed' ? 'failure' : 'rollback'}:${deploy.id}`;

/** A failed or rolled-back deploy's DORA failure: open, or closed by the deploy that restored service. */
export function doraFailureOf(
  settings: Settings,
  cause: DeployFailure['cause'],
  failed: Deploy,
  restoredBy?: Deploy,
): DoraFailure {
  const url = repositoryUrl(failed.repository);
  return {
    id: doraId(restoreId(cause, failed)),
    name: `${failed.service} ${cause === 'failed' ? 'deploy failed' : 'rolled back'} in ${failed.environment}`,
    services: [failed.service],
    env: envTag(settings, failed.environment),
    startedAt: failed.finishedAt,
    ...(restoredBy ? { finishedAt: restoredBy.finishedAt } : {}),
    ...(failed.commitSha && url ? { commitSha: failed.commitSha, repositoryUrl: url } : {}),
    ...(failed.team ? { team: failed.team } : {}),
    ...(versionOf(failed) ? { version: versionOf(failed) } : {}),
  };
}
