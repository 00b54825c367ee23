import type { BusMessage } from './bus/bus.ts';
import { CanonicalEvent, type Deploy, type ShippedChange } from './events.ts';
import { type Exporter, FUTURE_TOLERANCE_MS } from './export.ts';
import { settleLeadTime, shipsChanges } from './leadtime.ts';
import type { Logger } from './log.ts';
import type { Settings } from './settings.ts';
import { normalizeCircleci } from './sources/circleci.ts';
import { normalizeCloudbuild } from './sources/cloudbuild.ts';
import { normalizeDeployment } from './sources/deployments.ts';
import { normalizeGithub } from './sources/github.ts';
import { type Normalizer, UnusablePayload } from './sources/normalize.ts';
import { normalizeSpinnaker } from './sources/spinnaker.ts';
import { normalizeTerraform } from './sources/terraform.ts';
import type { PutResult, Store } from './store/store.ts';

const NORMALIZERS: Readonly<Record<string, Normalizer>> = {
  github: normalizeGithub,
  spinnaker: normalizeSpinnaker,
  terraform: normalizeTerraform,
  ci: normalizeDeployment,
  circleci: normalizeCircleci,
  cloudbuild: normalizeCloudbuild,
};

export type ProcessOutcome =
  | { outcome: 'stored'; results: Array<{ id: string; kind: string; result: PutResult }> }
  | { outcome: 'rejected'; reason: string };

export interface ProcessDeps {
  store: Store;
  settings: Settings;
  logger: Logger;
  /** Sends what was stored to Datadog; without one, `process` only stores. */
  exporter?: Exporter;
  now?: () => Date;
}

/**
 * `process`: one raw delivery to canonical events, stored once each, and the lead times they
 * complete. Permanently bad input is answered with a `rejected` outcome (the message is acked);
 * a store failure throws, so Pub/Sub redelivers.
 */
export function createProcessor(deps: ProcessDeps): (message: BusMessage) => Promise<ProcessOutcome> {
  const { store, settings, logger } = deps;
  const now = deps.now ?? (() => new Date());

  async function resolveWaitingDeploys(repository: string): Promise<ShippedChange[]> {
    const shipped: ShippedChange[] = [];
    for (const deploy of await store.deploysAwaitingLeadTime(repository))
      shipped.push(...(await settleLeadTime(store, deploy)));
    return shipped;
  }

  return async function processMessage(message) {
    const { source = '', eventType = '', deliveryId = '' } = message.attributes;
    const receivedAt = message.attributes.receivedAt ?? now().toISOString();
    const fields = { source, eventType, deliveryId };
    const reject = (reason: string): ProcessOutcome => {
      logger.warn('delivery not usable; acknowledged without storing', { ...fields, reason });
      return { outcome: 'rejected', reason };
    };

    const normalize = NORMALIZERS[source];
    if (normalize === undefined) return reject(`unknown source "${source}"`);
    let events: CanonicalEvent[];
    try {
      const body = JSON.parse(message.data.toString('utf8')) as unknown;
      events = normalize(body, eventType, { settings, receivedAt }).map((e) => CanonicalEvent.parse(e));
    } catch (error) {
      if (error instanceof UnusablePayload || error instanceof SyntaxError || error instanceof RangeError) {
        return reject(error.message);
      }
      throw error;
    }

    const results: Array<{ id: string; kind: string; result: PutResult }> = [];
    const touchedRepositories = new Set<string>();
    const deploysToSettle: Deploy[] = [];
    const toExport: Array<{ deploy: Deploy; replaced?: Deploy }> = [];
    for (const event of events) {
      if (event.kind === 'deploy') {
        if (Date.parse(event.finishedAt) - Date.parse(receivedAt) > FUTURE_TOLERANCE_MS) {
          logger.warn('deploy dated in the future of its receipt: stored, never exported', { ...fields, id: event.id });
        }
        const awaitingLeadTime = shipsChanges(settings, event);
        const replaced = deps.exporter === undefined ? undefined : await store.deploy(event.id);
        const result = await store.putDeploy(event, { awaitingLeadTime });
        results.push({ id: event.id, kind: event.kind, result });
        if (result === 'created') toExport.push({ deploy: event });
        else if (result === 'updated') toExport.push({ deploy: event, ...(replaced ? { replaced } : {}) });
        // A redelivery after an export failed: try the export again (the stored report wins).
        else if (replaced !== undefined && (await store.deployExported(event.id)) === false)
          toExport.push({ deploy: replaced });
        // Settled even when unchanged: a redelivery after a crash between the two writes completes it.
        if (awaitingLeadTime) deploysToSettle.push(event);
      } else {
        const result = await store.putChange(event);
        results.push({ id: event.id, kind: event.kind, result });
        if (event.kind !== 'commit') touchedRepositories.add(event.repository);
      }
    }
    const shipped: ShippedChange[] = [];
    for (const deploy of deploysToSettle) shipped.push(...(await settleLeadTime(store, deploy)));
    // A push or merged pull request may be what a waiting deploy needed (deploy before push).
    for (const repository of touchedRepositories) shipped.push(...(await resolveWaitingDeploys(repository)));

    if (deps.exporter !== undefined) {
      // Each deploy's own export, then its commits' lead times: a Datadog failure throws, and the
      // redelivery (or rollup) finishes what is left.
      for (const { deploy, replaced } of toExport) {
        await deps.exporter.deploy(deploy, { receivedAt, ...(replaced ? { replaced } : {}) });
      }
      await deps.exporter.shipped(shipped);
    }

    const created = results.filter((r) => r.result !== 'unchanged').length;
    logger.info('delivery processed', {
      ...fields,
      events: results.length,
      stored: created,
      duplicates: results.length - created,
    });
    return { outcome: 'stored', results };
  };
}
