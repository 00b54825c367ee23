import {
  CanonicalEvent,
  type Change,
  type Commit,
  type Deploy,
  type Incident,
  type PullRequest,
  type Push,
  ShippedChange,
} from '../events/model.ts';
import {
  byPushedAt,
  byText,
  type EventFilter,
  mergeCommit,
  mergeIncident,
  mergePush,
  type PutDeployResult,
  type PutResult,
  shipOrder,
  type ShippedRecord,
  type Store,
  supersedes,
  timeOf,
} from './store.ts';

import { SqliteLedger } from './sqlite-ledger.ts';
import { shaOf } from './sqlite-schema.ts';
/** The embedded store: one SQLite file (node:sqlite), for `npm start` and tests. */
export class SqliteStore extends SqliteLedger implements Store {
  private row(event: CanonicalEvent): [string | null, string | null, string | null, string | null] {
    if (event.kind === 'deploy') return [event.repository ?? null, shaOf(event), event.service, event.environment];
    if (event.kind === 'incident') return [null, shaOf(event), event.service ?? null, event.environment];
    return [event.repository, shaOf(event), null, null];
  }

  putIncident(incident: Incident): Promise<{ result: PutResult; incident: Incident }> {
    const [, sha, service, environment] = this.row(incident);
    return this.transaction(() => {
      const inserted = this.statements.insert.run(
        incident.id,
        'incident',
        incident.startedAt,
        null,
        sha,
        service,
        environment,
        incident.state,
        0,
        null,
        JSON.stringify(incident),
      );
      if (inserted.changes === 1) return { result: 'created' as const, incident };
      const row = this.statements.get.get(incident.id) as { body: string };
      const stored = JSON.parse(row.body) as Incident;
      const merged = mergeIncident(stored, incident);
      if (merged === undefined) return { result: 'unchanged' as const, incident: stored };
      const [, mergedSha, mergedService, mergedEnvironment] = this.row(merged);
      this.statements.update.run(
        merged.startedAt,
        null,
        mergedSha,
        mergedService,
        mergedEnvironment,
        merged.state,
        0,
        null,
        JSON.stringify(merged),
        merged.id,
      );
      return { result: 'updated' as const, incident: merged };
    });
  }

  incident(id: string): Promise<Incident | undefined> {
    const row = this.statements.get.get(id) as { body: string } | undefined;
    const event = row === undefined ? undefined : (JSON.parse(row.body) as CanonicalEvent);
    return Promise.resolve(event?.kind === 'incident' ? event : undefined);
  }

  incidentsBetween(from: string, to: string): Promise<Incident[]> {
    return Promise.resolve(this.bodies<Incident>(this.statements.kindBetween.all('incident', from, to)));
  }

  putDeploy(deploy: Deploy, options: { shipsChanges: boolean; claimUntil?: string }): Promise<PutDeployResult> {
    const [repository, sha, service, environment] = this.row(deploy);
    const ships = options.shipsChanges ? 1 : 0;
    const order = options.shipsChanges ? shipOrder(deploy) : null;
    const body = JSON.stringify(deploy);
    return this.transaction(() => {
      const inserted = this.statements.insert.run(
        deploy.id,
        'deploy',
        deploy.finishedAt,
        repository,
        sha,
        service,
        environment,
        deploy.status,
        ships,
        order,
        body,
      );
      if (inserted.changes === 1) {
        if (options.claimUntil === undefined) return { result: 'created' as const, before: undefined };
        this.statements.claimCreatedDeploy.run(options.claimUntil, deploy.id);
        return { result: 'created' as const, before: undefined, claimed: true as const };
      }
      const stored = this.statements.get.get(deploy.id) as { body: string } | undefined;
      const previous = stored === undefined ? undefined : (JSON.parse(stored.body) as Deploy);
      if (previous === undefined || !supersedes(deploy, previous))
        return { result: 'unchanged' as const, before: previous };
      this.statements.update.run(
        deploy.finishedAt,
        repository,
        sha,
        service,
        environment,
        deploy.status,
        ships,
        order,
        body,
        deploy.id,
      );
      return { result: 'updated' as const, before: previous };
    });
  }

  deploy(id: string): Promise<Deploy | undefined> {
    const row = this.statements.get.get(id) as { body: string } | undefined;
    const event = row === undefined ? undefined : (JSON.parse(row.body) as CanonicalEvent);
    return Promise.resolve(event?.kind === 'deploy' ? event : undefined);
  }

  async putChanges(changes: ReadonlyArray<{ change: Change; onDefaultBranch?: boolean }>): Promise<PutResult[]> {
    // In process, with no round trip to save: one after the other is the definition.
    const results: PutResult[] = [];
    for (const { change, onDefaultBranch } of changes)
      results.push(await this.putChange(change, onDefaultBranch === undefined ? {} : { onDefaultBranch }));
    return results;
  }

  putChange(change: Change, options: { onDefaultBranch?: boolean } = {}): Promise<PutResult> {
    const repository = change.repository;
    const sha = shaOf(change);
    return this.transaction(() => {
      const inserted = this.statements.insert.run(
        change.id,
        change.kind,
        timeOf(change),
        repository,
        sha,
        null,
        null,
        null,
        0,
        null,
        JSON.stringify(change),
      );
      if (inserted.changes === 1) return 'created';
      if (change.kind !== 'commit' && change.kind !== 'push') return 'unchanged';
      const stored = this.statements.get.get(change.id) as { body: string } | undefined;
      if (stored === undefined) return 'unchanged';
      const merged =
        change.kind === 'commit'
          ? mergeCommit(JSON.parse(stored.body) as Commit, change, options)
          : mergePush(JSON.parse(stored.body) as Push, change);
      if (merged === undefined) return 'unchanged';
      this.statements.updateBody.run(JSON.stringify(merged), change.id);
      return 'updated';
    });
  }

  previousSuccessfulDeploy(service: string, environment: string, before: string): Promise<Deploy | undefined> {
    const row = this.statements.previous.get(service, environment, before) as { body: string } | undefined;
    return Promise.resolve(row === undefined ? undefined : (JSON.parse(row.body) as Deploy));
  }

  nextSuccessfulDeploy(service: string, environment: string, after: string): Promise<Deploy | undefined> {
    return Promise.resolve(this.bodies<Deploy>(this.statements.nextSuccess.all(service, environment, after))[0]);
  }

  previousShippingDeploy(service: string, order: string): Promise<Deploy | undefined> {
    return Promise.resolve(this.bodies<Deploy>(this.statements.previousShipping.all(service, order))[0]);
  }

  laterFirstDeploys(service: string, order: string): Promise<Deploy[]> {
    return Promise.resolve(this.bodies<Deploy>(this.statements.laterFirst.all(service, order)));
  }

  nextShippingDeploys(service: string, order: string, limit: number): Promise<Deploy[]> {
    return Promise.resolve(this.bodies<Deploy>(this.statements.nextShipping.all(service, order, limit)));
  }

  shippingDeploysAt(repository: string, sha: string): Promise<Deploy[]> {
    return Promise.resolve(
      this.bodies<Deploy>(this.statements.shippingAt.all(repository, sha)).sort((a, b) =>
        byText(shipOrder(a), shipOrder(b)),
      ),
    );
  }

  private bySha<T>(kind: string, repository: string, sha: string): T[] {
    return this.bodies<T>(this.statements.bySha.all(kind, repository, sha));
  }

  pushesTo(repository: string, sha: string): Promise<Push[]> {
    return Promise.resolve(this.bySha<Push>('push', repository, sha).sort(byPushedAt));
  }

  commitsBefore(repository: string, at: string, limit: number): Promise<Commit[]> {
    return Promise.resolve(this.bodies<Commit>(this.statements.commitsBefore.all(repository, at, limit)));
  }

  pushesSince(repository: string, since: string): Promise<Push[]> {
    return Promise.resolve(this.bodies<Push>(this.statements.pushesSince.all(repository, since)).sort(byPushedAt));
  }

  shippingDeploysSince(repository: string, since: string): Promise<Deploy[]> {
    return Promise.resolve(this.bodies<Deploy>(this.statements.shippingSince.all(repository, since)));
  }

  commit(repository: string, sha: string): Promise<Commit | undefined> {
    return Promise.resolve(this.bySha<Commit>('commit', repository, sha)[0]);
  }

  commits(repository: string, shas: readonly string[]): Promise<Commit[]> {
    return Promise.resolve(shas.flatMap((sha) => this.bySha<Commit>('commit', repository, sha).slice(0, 1)));
  }

  pullRequestByMergeSha(repository: string, sha: string): Promise<PullRequest | undefined> {
    return Promise.resolve(this.bySha<PullRequest>('pull_request', repository, sha)[0]);
  }

  pullRequestsByMergeShas(repository: string, shas: readonly string[]): Promise<PullRequest[]> {
    return Promise.resolve(shas.flatMap((sha) => this.bySha<PullRequest>('pull_request', repository, sha).slice(0, 1)));
  }

  deploysWatching(repository: string, sha: string): Promise<Deploy[]> {
    return Promise.resolve(this.bodies<Deploy>(this.statements.watching.all(repository, sha)));
  }

  recordShipped(deploy: Deploy, record: ShippedRecord): Promise<{ toExport: ShippedChange[]; released: string[] }> {
    const order = shipOrder(deploy);
    return this.transaction(() => {
      const held = new Set((this.statements.heldBy.all(deploy.id) as Array<{ id: string }>).map((r) => r.id));
      const toExport: ShippedChange[] = [];
      const hold = (change: ShippedChange, counted: 0 | 1) => {
        const body = JSON.stringify(change);
        const row = this.statements.shippedRow.get(change.id) as
          | { deploy_id: string | null; ship_order: string | null; counted: number; exported: number; body: string }
          | undefined;
        if (row === undefined) {
          this.statements.insertShipped.run(change.id, deploy.id, order, counted, change.deployedAt, body);
          if (counted === 1) toExport.push(change);
          return;
        }
        held.delete(change.id);
        const mine = row.deploy_id === deploy.id;
        // An earlier deploy holds it: it is that deploy's. Else it is this one's, export state kept.
        if (!mine && row.ship_order !== null && row.ship_order < order) return;
        if (!mine || row.body !== body || row.counted !== counted)
          this.statements.holdShipped.run(deploy.id, order, counted, change.deployedAt, body, change.id);
        if (counted === 1 && row.exported === 0) toExport.push(change);
      };
      for (const change of record.shipped) hold(change, 1);
      for (const change of record.baseline) hold(change, 0);
      for (const id of held) this.statements.releaseShipped.run(id);
      this.statements.setFirst.run(record.first ? 1 : 0, deploy.id);
      this.statements.clearWaits.run(deploy.id);
      if (deploy.repository !== undefined)
        for (const sha of record.watching) this.statements.addWait.run(deploy.id, deploy.repository, sha);
      return { toExport, released: [...held] };
    });
  }

  shippedBy(deployId: string): Promise<ShippedChange[]> {
    const rows = this.statements.shippedBy.all(deployId) as Array<{ body: string }>;
    return Promise.resolve(rows.map((r) => ShippedChange.parse(JSON.parse(r.body))));
  }

  events(filter: EventFilter): Promise<CanonicalEvent[]> {
    const where: string[] = [];
    const values: string[] = [];
    if (filter.kind !== undefined) {
      where.push('kind = ?');
      values.push(filter.kind);
    }
    if (filter.since !== undefined) {
      where.push('time >= ?');
      values.push(filter.since);
    }
    const sql = `SELECT body FROM events ${where.length > 0 ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY time, id`;
    const rows = this.db.prepare(sql).all(...values) as Array<{ body: string }>;
    return Promise.resolve(rows.map((r) => CanonicalEvent.parse(JSON.parse(r.body))));
  }

  deploysBetween(from: string, to: string, of?: { service: string; environment: string }): Promise<Deploy[]> {
    const rows =
      of === undefined
        ? this.statements.deploysBetween.all(from, to)
        : this.statements.deploysOfBetween.all(of.service, of.environment, from, to);
    return Promise.resolve(this.bodies<Deploy>(rows));
  }

  commitsBetween(from: string, to: string): Promise<Commit[]> {
    return Promise.resolve(this.bodies<Commit>(this.statements.kindBetween.all('commit', from, to)));
  }

  pullRequestsBetween(from: string, to: string): Promise<PullRequest[]> {
    return Promise.resolve(this.bodies<PullRequest>(this.statements.kindBetween.all('pull_request', from, to)));
  }

  shippedBetween(from: string, to: string): Promise<ShippedChange[]> {
    return Promise.resolve(this.bodies<ShippedChange>(this.statements.shippedBetween.all(from, to)));
  }

  /** SQLite's plan for each lookup `process` runs per delivery: each must search an index, never scan. */
  explainLookups(): Record<string, string> {
    const lookups = [
      'previous',
      'nextSuccess',
      'previousShipping',
      'nextShipping',
      'bySha',
      'shippingAt',
      'watching',
      'shippedRow',
      'shippedBy',
      'deploysOfBetween',
      'get',
    ] as const;
    return Object.fromEntries(
      lookups.map((name) => {
        const sql = this.statements[name].sourceSQL;
        const params = (sql.match(/\?/g) ?? []).map(() => '');
        const plan = this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>;
        return [name, plan.map((row) => row.detail).join('; ')];
      }),
    );
  }
}
