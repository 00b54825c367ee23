import { type BusMessage, unpackFromTopic } from '../bus/bus.ts';
import type { CanonicalEvent, Change, Deploy, Incident, ShippedChange } from '../events/model.ts';
import { type Exporter } from '../export/exporter.ts';
import { FUTURE_TOLERANCE_MS } from '../export/mapping.ts';
import { settleLeadTime, shipsChanges } from '../metrics/lead-time.ts';
import type { Logger } from '../log.ts';
import type { Settings } from '../events/settings.ts';
import { normalizeForStore } from '../sources/index.ts';
import { enrich, type Enrichers } from './enrich.ts';
import type { EventStore, ExportLedger, PutResult } from '../store/store.ts';

export type ProcessOutcome =
  | { outcome: 'stored'; results: Array<{ id: string; kind: string; result: PutResult }> }
  | { outcome: 'rejected'; reason: string };

/** How often each instance notes a source's last delivery in the store. */
const SOURCE_SEEN_EVERY_MS = 60_000;

interface ProcessDeps {
  /** The events, and of the ledger only whether a redelivered deploy's export finished. */
  store: EventStore & Pick<ExportLedger, 'deployExported'>;
  settings: Settings;
  logger: Logger;
  /** Sends what was stored to Datadog; without one, `process` only stores. */
  exporter?: Exporter;
  /** Lookups of what a delivery leaves out (a Terraform run's sha, a commit's files); none by default. */
  enrichers?: Enrichers;
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

  /** Deploys whose history waited for a sha that a push, a pull request or a commit just supplied. */
  async function settleWaiting(waits: Map<string, Set<string>>): Promise<ShippedChange[]> {
    const shipped: ShippedChange[] = [];
    for (const [repository, shas] of waits)
      for (const sha of shas)
        for (const deploy of await store.deploysWatching(repository, sha))
          shipped.push(...(await settleLeadTime(store, settings, deploy)));
    return shipped;
  }

  /** Noted at most once a minute per source and instance: the hot path pays one write a minute. */
  const noted = new Map<string, number>();
  async function noteSeen(source: string, receivedAt: string): Promise<void> {
    const at = now().getTime();
    const last = noted.get(source);
    if (source === '' || (last !== undefined && at - last < SOURCE_SEEN_EVERY_MS)) return;
    // Taken before the write, not after: deliveries handled side by side would each write the same
    // document, in Firestore one transaction each, waiting on each other's lock (2.3 s each, 8 at a
    // time against the emulator, on an instance's first deliveries). A failed write frees it again.
    noted.set(source, at);
    try {
      await store.noteSourceSeen(source, receivedAt);
    } catch (error) {
      if (noted.get(source) === at) {
        if (last === undefined) noted.delete(source);
        else noted.set(source, last);
      }
      throw error;
    }
  }

  return async function processMessage(message) {
    const { source = '', receivedAt } = message.attributes;
    // Beside the delivery's own work, not after it: its write waits on no read of the delivery, and
    // an instance's first delivery (whose note always goes) is spared its round trips.
    const seen = noteSeen(source, receivedAt ?? now().toISOString());
    const [outcome] = await Promise.all([handle(message), seen]);
    return outcome;
  };

  async function handle(message: BusMessage): Promise<ProcessOutcome> {
    const { source = '', eventType = '', deliveryId = '' } = message.attributes;
    const receivedAt = message.attributes.receivedAt ?? now().toISOString();
    const fields = { source, eventType, deliveryId };
    const reject = (reason: string): ProcessOutcome => {
      logger.warn('delivery not usable; acknowledged without storing', { ...fields, reason });
      return { outcome: 'rejected', reason };
    };

    let events: CanonicalEvent[];
    try {
      const body = JSON.parse(unpackFromTopic(message).toString('utf8')) as unknown;
      const normalized = normalizeForStore(source, body, eventType, { settings, receivedAt });
      // Permanent, never retried: a redelivery would fail the same way.
      if (!normalized.ok) return reject(`${normalized.field}: ${normalized.problem}`);
      events = normalized.events;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string' && (code.startsWith('Z_') || code === 'ERR_BUFFER_TOO_LARGE'))
        return reject('compressed data that does not inflate within the cap');
      // Never the engine's message: it quotes the payload.
      if (error instanceof SyntaxError) return reject('not valid JSON');
      throw error;
    }

    if (deps.enrichers !== undefined) events = await enrich(events, settings, deps.enrichers, logger);

    const results: Array<{ id: string; kind: string; result: PutResult }> = [];
    const waits = new Map<string, Set<string>>();
    const supplied = (repository: string, sha: string) => {
      const shas = waits.get(repository);
      if (shas === undefined) waits.set(repository, new Set([sha]));
      else shas.add(sha);
    };
    const deploysToSettle: Array<{ deploy: Deploy; previous?: Deploy }> = [];
    const toExport: Array<{ deploy: Deploy; replaced?: Deploy; claimed?: boolean }> = [];
    const incidents: Incident[] = [];
    // Changes next to each other (a push and its commits) are stored together, in one round trip.
    let changes: Change[] = [];
    const putChanges = async () => {
      if (changes.length === 0) return;
      const batch = changes;
      changes = [];
      const stored = await store.putChanges(
        batch.map((change) => ({
          change,
          onDefaultBranch: change.kind === 'commit' && settings.defaultBranches.includes(change.branch),
        })),
      );
      batch.forEach((change, i) => {
        results.push({ id: change.id, kind: change.kind, result: stored[i] ?? 'unchanged' });
        if (change.kind === 'push') supplied(change.repository, change.after);
        else if (change.kind === 'pull_request') supplied(change.repository, change.mergeCommitSha);
        else if (change.parents !== undefined) supplied(change.repository, change.sha);
      });
    };
    for (const event of events) {
      if (event.kind === 'commit' || event.kind === 'push' || event.kind === 'pull_request') {
        changes.push(event);
        continue;
      }
      await putChanges();
      if (event.kind === 'incident') {
        const { result, incident } = await store.putIncident(event);
        results.push({ id: event.id, kind: event.kind, result });
        // Exported even when unchanged: a redelivery after a crash sends what did not go (each part once).
        incidents.push(incident);
      } else if (event.kind === 'deploy') {
        if (Date.parse(event.finishedAt) - Date.parse(receivedAt) > FUTURE_TOLERANCE_MS) {
          logger.warn('deploy dated in the future of its receipt: stored, never exported', { ...fields, id: event.id });
          event.futureDated = true;
        }
        // A new deploy is created already claimed for its export, which follows at once.
        const claimUntil = deps.exporter?.claimUntil();
        const {
          result,
          before: replaced,
          claimed,
        } = await store.putDeploy(event, {
          shipsChanges: shipsChanges(settings, event),
          ...(claimUntil === undefined ? {} : { claimUntil }),
        });
        results.push({ id: event.id, kind: event.kind, result });
        // The stored report wins over an older one arriving late.
        const current = result === 'unchanged' ? (replaced ?? event) : event;
        if (result === 'created') toExport.push({ deploy: event, claimed: claimed === true });
        else if (result === 'updated') toExport.push({ deploy: event, ...(replaced ? { replaced } : {}) });
        // A redelivery after an export failed: try the export again.
        else if (replaced !== undefined && (await store.deployExported(event.id)) === false)
          toExport.push({ deploy: replaced });
        // Settled even when unchanged: a redelivery after a crash between the two writes completes
        // it. An updated deploy that ships no more gives its commits up.
        if (shipsChanges(settings, current) || result === 'updated')
          deploysToSettle.push({
            deploy: current,
            ...(result === 'updated' && replaced ? { previous: replaced } : {}),
          });
      }
    }
    await putChanges();
    // Each deploy's own export first, while its claim is fresh (the walk below may take seconds);
    // it reads nothing the walk writes. A Datadog failure is thrown only after the walk, so the
    // lead times are stored whatever Datadog does, and the redelivery (or rollup) sends what is left.
    let exportFailure: { error: unknown } | undefined;
    if (deps.exporter !== undefined) {
      for (const { deploy, replaced, claimed } of toExport) {
        try {
          await deps.exporter.deploy(
            deploy,
            { receivedAt, ...(replaced ? { replaced } : {}) },
            { claimed: claimed === true },
          );
        } catch (error) {
          exportFailure ??= { error };
        }
      }
    }
    const shipped: ShippedChange[] = [];
    for (const { deploy, previous } of deploysToSettle)
      shipped.push(...(await settleLeadTime(store, settings, deploy, previous)));
    // A push or merged pull request may be what a waiting deploy needed (deploy before push).
    shipped.push(...(await settleWaiting(waits)));
    if (exportFailure !== undefined) throw exportFailure.error;

    if (deps.exporter !== undefined) {
      // Then its commits' lead times: one point per change (a change settled twice in this
      // delivery is sent as last recorded).
      await deps.exporter.shipped([...new Map(shipped.map((change) => [change.id, change])).values()]);
      for (const incident of incidents) await deps.exporter.incident(incident);
    }

    const created = results.filter((r) => r.result !== 'unchanged').length;
    logger.info('delivery processed', {
      ...fields,
      events: results.length,
      stored: created,
      duplicates: results.length - created,
    });
    return { outcome: 'stored', results };
  }
}
