import * as z from 'zod';
import type { Deploy, Incident } from '../events/model.ts';
import { type Settings, teamOf } from '../events/settings.ts';
import { isProductionIncident, linkedDeploy } from '../metrics/definitions.ts';
import type { ExportItem } from '../store/store.ts';
import { doraId, envTag, epochSeconds, type ExportDeps, OLDEST_EVENT_S, repositoryUrl } from './mapping.ts';
import { sendRestoreTime } from './restores.ts';

export const IncidentExport = z.object({
  kind: z.literal('incident'),
  /** `opened`: the dashboard event of a new incident; `state`: its DORA failure as it stands now; `restore`: its time to restore. */
  part: z.enum(['opened', 'state', 'restore']),
  incident: z.custom<Incident>(),
});
export type IncidentExport = z.infer<typeof IncidentExport>;

/**
 * What an incident sends, each once, by deterministic ids, so a redelivery or a stale update adds
 * nothing: an event when it is first seen open; its DORA failure as of its latest update (an upsert
 * under one DORA id: a resolution closes it, a reopening opens it again); once resolved, its time
 * to restore (the first resolution's: Datadog cannot take a value back, the store and the report
 * keep the last). Incidents outside production send nothing.
 */
export function incidentItems(settings: Settings, incident: Incident): ExportItem[] {
  if (!isProductionIncident(settings, incident)) return [];
  const items: ExportItem[] = [];
  const item = (id: string, at: string, part: IncidentExport['part']) =>
    items.push({ id, at, body: { kind: 'incident', part, incident } satisfies IncidentExport });
  // Withdrawn: its DORA failure is taken back (the restore time Datadog already has stays, as a
  // distribution point cannot be taken back; the report and the gauges count it nowhere).
  if (incident.withdrawn === true) {
    item(`incident:${incident.id}@${incident.updatedAt}`, incident.updatedAt, 'state');
    return items;
  }
  if (incident.state === 'open') item(`incident-opened:${incident.id}`, incident.startedAt, 'opened');
  item(`incident:${incident.id}@${incident.updatedAt}`, incident.updatedAt, 'state');
  if (incident.resolvedAt !== undefined && incident.startUnknown !== true)
    item(`incident-restore:${incident.id}`, incident.resolvedAt, 'restore');
  return items;
}

/** The deploy an incident is tied to, from the deploys the store holds around its start. */
async function linkedDeployOf(deps: ExportDeps, incident: Incident): Promise<Deploy | undefined> {
  const start = Date.parse(incident.startedAt);
  const back = incident.sha === undefined ? deps.settings.incidentWindowHours * 3600_000 : 30 * 86_400_000;
  const [named, around] = await Promise.all([
    incident.deployId === undefined ? undefined : deps.store.deploy(incident.deployId),
    deps.store.deploysBetween(
      new Date(start - back).toISOString(),
      new Date(start + (incident.sha === undefined ? 1 : 86_400_000)).toISOString(),
    ),
  ]);
  return linkedDeploy(deps.settings, incident, named === undefined ? around : [named, ...around]);
}

export async function exportIncident(deps: ExportDeps, exported: IncidentExport, id: string): Promise<void> {
  const { settings, sink, store } = deps;
  // Sent as it stands now: an older update retried after a newer one went never takes it back.
  const incident = (await store.incident(exported.incident.id)) ?? exported.incident;
  const now = deps.now();
  const linked = await linkedDeployOf(deps, incident);
  const service = incident.service ?? linked?.service;
  const team = (service === undefined ? undefined : teamOf(settings, service)) ?? linked?.team;
  const tags = [
    `service:${service ?? 'none'}`,
    `env:${envTag(settings, incident.environment)}`,
    `team:${team ?? 'none'}`,
    `source:${incident.source}`,
  ];
  const event = async (what: string, timestamp: number, alertType: 'success' | 'error') => {
    if (timestamp < now.getTime() / 1000 - OLDEST_EVENT_S) return; // older than the events API takes
    await sink.event({
      title: `Incident ${what}: ${incident.title ?? incident.id}`,
      text: [
        service ? `service ${service}` : 'no service named',
        linked ? `tied to deploy ${linked.id}${linked.commitSha ? ` (${linked.commitSha})` : ''}` : 'tied to no deploy',
        incident.url ?? '',
      ]
        .filter((line) => line !== '')
        .join('\n'),
      timestamp,
      tags: [...tags, 'devstats:incident'],
      aggregationKey: incident.id,
      alertType,
    });
  };
  switch (exported.part) {
    case 'opened':
      await event('opened', epochSeconds(incident.startedAt), 'error');
      return;
    case 'state': {
      if (incident.withdrawn === true) {
        await sink.withdrawDoraFailure(doraId(`incident:${incident.id}`));
        return;
      }
      // With no known start, Datadog would read a 0 s recovery: nothing is sent until the start is known.
      if (incident.startUnknown === true) return;
      const url = repositoryUrl(linked?.repository);
      await sink.doraFailure({
        id: doraId(`incident:${incident.id}`),
        name: incident.title ?? `${service ?? 'unknown service'} incident`,
        services: service === undefined ? [] : [service],
        env: envTag(settings, incident.environment),
        startedAt: incident.startedAt,
        ...(incident.resolvedAt ? { finishedAt: incident.resolvedAt } : {}),
        ...(linked?.commitSha && url ? { commitSha: linked.commitSha, repositoryUrl: url } : {}),
        ...(team ? { team } : {}),
        ...(linked?.version ? { version: linked.version } : {}),
        ...(incident.severity ? { severity: incident.severity } : {}),
      });
      if (incident.resolvedAt !== undefined) await event('resolved', epochSeconds(incident.resolvedAt), 'success');
      return;
    }
    case 'restore':
      if (incident.resolvedAt !== undefined && incident.startUnknown !== true && incident.withdrawn !== true)
        await sendRestoreTime(deps, id, incident.startedAt, incident.resolvedAt, [
          ...tags.slice(0, 3),
          'cause:incident',
        ]);
  }
}
