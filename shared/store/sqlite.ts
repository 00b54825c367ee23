import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { openDatabase } from './sqlite-file.ts';
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
  type ExportItem,
  type ExportRef,
  mergeCommit,
  mergeIncident,
  mergePush,
  type ParkedExport,
  type PutDeployResult,
  type PutResult,
  shipOrder,
  type ShippedRecord,
  type Store,
  StoreUnavailable,
  supersedes,
  timeOf,
} from './store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  time TEXT NOT NULL,
  repository TEXT,
  sha TEXT,          -- commit sha, PR merge commit sha, push 'after', deploy commitSha
  service TEXT,
  environment TEXT,
  status TEXT,
  ships INTEGER NOT NULL DEFAULT 0,  -- a deploy that ships commits (lead time)
  ship_order TEXT,                   -- finishedAt|id of a deploy that ships
  resolved_first INTEGER NOT NULL DEFAULT 0, -- its shipped commits were resolved as its service's first
  exported INTEGER NOT NULL DEFAULT 0,  -- 0 to send, 1 sent, 2 parked (Datadog refused it), 3 in doubt
  claim_until TEXT,
  parts TEXT,                          -- a deploy's export parts already sent, when it stopped part-way
  parked TEXT,                         -- why it is parked: reason and time, as JSON
  body TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS events_unexported ON events (kind, time) WHERE exported = 0;
CREATE INDEX IF NOT EXISTS events_by_sha ON events (kind, repository, sha, time);
CREATE INDEX IF NOT EXISTS events_by_deploy ON events (kind, service, environment, status, time);
CREATE INDEX IF NOT EXISTS events_by_time ON events (kind, time);
CREATE INDEX IF NOT EXISTS events_shipping ON events (service, ship_order) WHERE ships = 1;
CREATE TABLE IF NOT EXISTS waits (
  deploy_id TEXT NOT NULL,
  repository TEXT NOT NULL,
  sha TEXT NOT NULL,
  PRIMARY KEY (deploy_id, sha)
) STRICT;
CREATE INDEX IF NOT EXISTS waits_by_sha ON waits (repository, sha);
CREATE TABLE IF NOT EXISTS shipped (
  id TEXT PRIMARY KEY,               -- <service>|<repository>@<sha>: one per commit and service
  deploy_id TEXT,                    -- the deploy that ships it; NULL once released, until another takes it
  ship_order TEXT,
  counted INTEGER NOT NULL DEFAULT 1, -- 0: a first deploy's earlier history, held but never counted
  deployed_at TEXT NOT NULL,
  exported INTEGER NOT NULL DEFAULT 0,
  claim_until TEXT,
  parked TEXT,
  body TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS shipped_by_time ON shipped (deployed_at) WHERE deploy_id IS NOT NULL AND counted = 1;
CREATE INDEX IF NOT EXISTS shipped_unexported ON shipped (deployed_at)
  WHERE exported = 0 AND deploy_id IS NOT NULL AND counted = 1;
CREATE INDEX IF NOT EXISTS shipped_by_deploy ON shipped (deploy_id);
CREATE TABLE IF NOT EXISTS items (
  id TEXT PRIMARY KEY,
  at TEXT NOT NULL,
  exported INTEGER NOT NULL DEFAULT 0,
  claim_until TEXT,
  parked TEXT,
  body TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS items_unexported ON items (at) WHERE exported = 0;
CREATE TABLE IF NOT EXISTS cursors (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS sources (source TEXT PRIMARY KEY, last_seen TEXT NOT NULL) STRICT;
CREATE INDEX IF NOT EXISTS events_parked ON events (kind) WHERE exported = 2;
CREATE INDEX IF NOT EXISTS shipped_parked ON shipped (id) WHERE exported = 2;
CREATE INDEX IF NOT EXISTS items_parked ON items (id) WHERE exported = 2;
`;

function shaOf(event: CanonicalEvent): string | null {
  switch (event.kind) {
    case 'deploy':
      return event.commitSha ?? null;
    case 'commit':
      return event.sha;
    case 'pull_request':
      return event.mergeCommitSha;
    case 'push':
      return event.after;
    case 'incident':
      return event.sha ?? null;
  }
}

function prepareStatements(db: DatabaseSync) {
  const prepare = (sql: string): StatementSync => db.prepare(sql);
  return {
    insert: prepare(
      `INSERT INTO events (id, kind, time, repository, sha, service, environment, status, ships, ship_order, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
    ),
    get: prepare('SELECT body, exported FROM events WHERE id = ?'),
    update: prepare(
      `UPDATE events SET time = ?, repository = ?, sha = ?, service = ?, environment = ?, status = ?,
       ships = ?, ship_order = ?, exported = 0, claim_until = NULL, parts = NULL, parked = NULL, body = ? WHERE id = ?`,
    ),
    updateBody: prepare('UPDATE events SET body = ? WHERE id = ?'),
    previous: prepare(
      `SELECT body FROM events WHERE kind = 'deploy' AND service = ? AND environment = ? AND status = 'success'
       AND time < ? ORDER BY time DESC LIMIT 1`,
    ),
    nextSuccess: prepare(
      `SELECT body FROM events WHERE kind = 'deploy' AND service = ? AND environment = ? AND status = 'success'
       AND time > ? ORDER BY time LIMIT 1`,
    ),
    putItem: prepare(
      `INSERT INTO items (id, at, body) VALUES (?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET at = excluded.at, body = excluded.body WHERE exported = 0`,
    ),
    claimItem: prepare(
      'UPDATE items SET claim_until = ? WHERE id = ? AND exported = 0 AND (claim_until IS NULL OR claim_until < ?)',
    ),
    markItem: prepare('UPDATE items SET exported = 1 WHERE id = ?'),
    releaseItemClaim: prepare('UPDATE items SET claim_until = NULL WHERE id = ?'),
    unexportedItems: prepare('SELECT id, at, body FROM items WHERE exported = 0 ORDER BY at LIMIT ?'),
    previousShipping: prepare(
      'SELECT body FROM events WHERE ships = 1 AND service = ? AND ship_order < ? ORDER BY ship_order DESC LIMIT 1',
    ),
    laterFirst: prepare(
      'SELECT body FROM events WHERE ships = 1 AND service = ? AND ship_order > ? AND resolved_first = 1 ORDER BY ship_order',
    ),
    setFirst: prepare('UPDATE events SET resolved_first = ? WHERE id = ?'),
    nextShipping: prepare(
      'SELECT body FROM events WHERE ships = 1 AND service = ? AND ship_order > ? ORDER BY ship_order LIMIT ?',
    ),
    bySha: prepare('SELECT body FROM events WHERE kind = ? AND repository = ? AND sha = ? ORDER BY time'),
    shippingAt: prepare(
      "SELECT body FROM events WHERE kind = 'deploy' AND repository = ? AND sha = ? AND ships = 1 ORDER BY time",
    ),
    watching: prepare(
      `SELECT e.body FROM waits w JOIN events e ON e.id = w.deploy_id WHERE w.repository = ? AND w.sha = ?
       ORDER BY e.ship_order`,
    ),
    clearWaits: prepare('DELETE FROM waits WHERE deploy_id = ?'),
    addWait: prepare('INSERT INTO waits (deploy_id, repository, sha) VALUES (?, ?, ?) ON CONFLICT DO NOTHING'),
    shippedRow: prepare('SELECT deploy_id, ship_order, counted, exported, body FROM shipped WHERE id = ?'),
    heldBy: prepare('SELECT id FROM shipped WHERE deploy_id = ?'),
    insertShipped: prepare(
      'INSERT INTO shipped (id, deploy_id, ship_order, counted, deployed_at, body) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    holdShipped: prepare(
      'UPDATE shipped SET deploy_id = ?, ship_order = ?, counted = ?, deployed_at = ?, body = ? WHERE id = ?',
    ),
    releaseShipped: prepare('UPDATE shipped SET deploy_id = NULL, ship_order = NULL WHERE id = ?'),
    deploysBetween: prepare(
      "SELECT body FROM events WHERE kind = 'deploy' AND time >= ? AND time < ? ORDER BY time, id",
    ),
    deploysOfBetween: prepare(
      "SELECT body FROM events WHERE kind = 'deploy' AND service = ? AND environment = ? AND time >= ? AND time < ? ORDER BY time, id",
    ),
    kindBetween: prepare('SELECT body FROM events WHERE kind = ? AND time >= ? AND time < ? ORDER BY time, id'),
    markExported: prepare('UPDATE events SET exported = 1, parts = NULL WHERE id = ?'),
    markParts: prepare('UPDATE events SET parts = ? WHERE id = ? AND exported = 0'),
    parts: prepare('SELECT parts FROM events WHERE id = ?'),
    markShippedExported: prepare('UPDATE shipped SET exported = 1 WHERE id = ?'),
    claimDeploy: prepare(
      "UPDATE events SET claim_until = ? WHERE id = ? AND kind = 'deploy' AND exported = 0 AND (claim_until IS NULL OR claim_until < ?) RETURNING parts",
    ),
    claimShipped: prepare(
      'UPDATE shipped SET claim_until = ? WHERE id = ? AND exported = 0 AND (claim_until IS NULL OR claim_until < ?)',
    ),
    releaseDeployClaim: prepare('UPDATE events SET claim_until = NULL WHERE id = ?'),
    releaseShippedClaim: prepare('UPDATE shipped SET claim_until = NULL WHERE id = ?'),
    shippedBetween: prepare(
      'SELECT body FROM shipped WHERE deploy_id IS NOT NULL AND counted = 1 AND deployed_at >= ? AND deployed_at < ? ORDER BY deployed_at, id',
    ),
    unexported: prepare("SELECT body FROM events WHERE kind = 'deploy' AND exported = 0 ORDER BY time LIMIT ?"),
    unexportedShipped: prepare(
      'SELECT body FROM shipped WHERE exported = 0 AND deploy_id IS NOT NULL AND counted = 1 ORDER BY deployed_at LIMIT ?',
    ),
    shippedBy: prepare('SELECT body FROM shipped WHERE deploy_id = ? AND counted = 1 ORDER BY id'),
  };
}

/** The embedded store: one SQLite file (node:sqlite), for `npm start` and tests. */
export class SqliteStore implements Store {
  private readonly db: DatabaseSync;
  private readonly statements: ReturnType<typeof prepareStatements>;

  constructor(path: string) {
    let unmigrated = false;
    this.db = openDatabase(path, (db) => {
      const columns = db.prepare("SELECT name FROM pragma_table_info('events')").all() as Array<{ name: string }>;
      unmigrated = columns.length > 0 && !columns.some((c) => c.name === 'ship_order');
      if (!unmigrated) db.exec(SCHEMA);
    });
    if (unmigrated) {
      this.db.close();
      throw new StoreUnavailable(
        `${path} was written by an earlier DevStats and is not migrated: move it away and send the history again (devstats replay, or backfill)`,
      );
    }
    this.statements = prepareStatements(this.db);
  }

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

  putDeploy(deploy: Deploy, options: { shipsChanges: boolean }): Promise<PutDeployResult> {
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
      if (inserted.changes === 1) return { result: 'created' as const, before: undefined };
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

  putExportItems(items: ExportItem[]): Promise<void> {
    return this.transaction(() => {
      for (const item of items) this.statements.putItem.run(item.id, item.at, JSON.stringify(item.body));
    });
  }

  claimExportItems(ids: string[], now: string, until: string): Promise<string[]> {
    return Promise.resolve(ids.filter((id) => this.statements.claimItem.run(until, id, now).changes === 1));
  }

  markItemsExported(ids: string[]): Promise<void> {
    for (const id of ids) this.statements.markItem.run(id);
    return Promise.resolve();
  }

  unexportedItems(limit: number): Promise<ExportItem[]> {
    const rows = this.statements.unexportedItems.all(limit) as Array<{ id: string; at: string; body: string }>;
    return Promise.resolve(
      rows.map((r) => ({ id: r.id, at: r.at, body: JSON.parse(r.body) as Record<string, unknown> })),
    );
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

  /** Runs `work` in one write transaction: all of it is stored, or none. */
  private transaction<T>(work: () => T): Promise<T> {
    try {
      this.db.exec('BEGIN IMMEDIATE');
      const result = work();
      this.db.exec('COMMIT');
      return Promise.resolve(result);
    } catch (error) {
      // A full disk ends the transaction itself (SQLITE_FULL): a ROLLBACK then would hide why.
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
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

  private bodies<T>(rows: unknown[]): T[] {
    return (rows as Array<{ body: string }>).map((r) => JSON.parse(r.body) as T);
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

  deployExported(deployId: string): Promise<boolean | undefined> {
    const row = this.statements.get.get(deployId) as { exported: number } | undefined;
    return Promise.resolve(row === undefined ? undefined : row.exported === 1);
  }

  claimDeployExport(deployId: string, now: string, until: string): Promise<string[] | undefined> {
    const row = this.statements.claimDeploy.get(until, deployId, now) as { parts: string | null } | undefined;
    return Promise.resolve(
      row === undefined ? undefined : row.parts === null ? [] : (JSON.parse(row.parts) as string[]),
    );
  }

  markDeployParts(deployId: string, parts: string[]): Promise<void> {
    this.statements.markParts.run(JSON.stringify(parts), deployId);
    return Promise.resolve();
  }

  parkExports(exports: ExportRef[], reason: string, at: string): Promise<void> {
    const parked = JSON.stringify({ reason, at });
    return this.transaction(() => {
      for (const { kind, id } of exports) {
        const table = kind === 'deploy' ? 'events' : kind === 'shipped' ? 'shipped' : 'items';
        this.db
          .prepare(`UPDATE ${table} SET exported = 2, claim_until = NULL, parked = ? WHERE id = ? AND exported = 0`)
          .run(parked, id);
      }
    });
  }

  markExportsInDoubt(exports: ExportRef[]): Promise<void> {
    return this.setExportState(exports, 0, 3);
  }

  clearExportsInDoubt(exports: ExportRef[]): Promise<void> {
    return this.setExportState(exports, 3, 0);
  }

  private setExportState(exports: ExportRef[], from: number, to: number): Promise<void> {
    return this.transaction(() => {
      for (const { kind, id } of exports) {
        const table = kind === 'deploy' ? 'events' : kind === 'shipped' ? 'shipped' : 'items';
        this.db.prepare(`UPDATE ${table} SET exported = ? WHERE id = ? AND exported = ?`).run(to, id, from);
      }
    });
  }

  parkedExports(limit: number): Promise<ParkedExport[]> {
    const rows = this.db
      .prepare(
        `SELECT 'deploy' AS kind, id, parked FROM events WHERE kind = 'deploy' AND exported = 2
         UNION ALL SELECT 'shipped', id, parked FROM shipped WHERE exported = 2
         UNION ALL SELECT 'item', id, parked FROM items WHERE exported = 2 LIMIT ?`,
      )
      .all(limit) as Array<{ kind: ParkedExport['kind']; id: string; parked: string }>;
    return Promise.resolve(
      rows
        .map((r) => ({ kind: r.kind, id: r.id, ...(JSON.parse(r.parked) as { reason: string; at: string }) }))
        .sort((a, b) => byText(a.at, b.at) || byText(a.id, b.id)),
    );
  }

  unparkExports(): Promise<number> {
    return this.transaction(() => {
      let count = 0;
      for (const table of ['events', 'shipped', 'items'])
        count += Number(
          this.db.prepare(`UPDATE ${table} SET exported = 0, parked = NULL WHERE exported = 2`).run().changes,
        );
      return count;
    });
  }

  claimShippedExport(ids: string[], now: string, until: string): Promise<string[]> {
    return Promise.resolve(ids.filter((id) => this.statements.claimShipped.run(until, id, now).changes === 1));
  }

  releaseExportClaims(deployIds: string[], shippedIds: string[], itemIds: string[] = []): Promise<void> {
    for (const id of deployIds) this.statements.releaseDeployClaim.run(id);
    for (const id of shippedIds) this.statements.releaseShippedClaim.run(id);
    for (const id of itemIds) this.statements.releaseItemClaim.run(id);
    return Promise.resolve();
  }

  markDeployExported(deployId: string): Promise<void> {
    this.statements.markExported.run(deployId);
    return Promise.resolve();
  }

  shippedBetween(from: string, to: string): Promise<ShippedChange[]> {
    return Promise.resolve(this.bodies<ShippedChange>(this.statements.shippedBetween.all(from, to)));
  }

  markShippedExported(ids: string[]): Promise<void> {
    for (const id of ids) this.statements.markShippedExported.run(id);
    return Promise.resolve();
  }

  unexportedDeploys(limit: number): Promise<Deploy[]> {
    return Promise.resolve(this.bodies<Deploy>(this.statements.unexported.all(limit)));
  }

  unexportedShipped(limit: number): Promise<ShippedChange[]> {
    return Promise.resolve(this.bodies<ShippedChange>(this.statements.unexportedShipped.all(limit)));
  }

  backfillCursor(key: string): Promise<string | undefined> {
    const row = this.db.prepare('SELECT value FROM cursors WHERE key = ?').get(key) as { value: string } | undefined;
    return Promise.resolve(row?.value);
  }

  putBackfillCursor(key: string, value: string): Promise<void> {
    this.db
      .prepare('INSERT INTO cursors (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value')
      .run(key, value);
    return Promise.resolve();
  }

  noteSourceSeen(source: string, at: string): Promise<void> {
    this.db
      .prepare(
        'INSERT INTO sources (source, last_seen) VALUES (?, ?) ON CONFLICT (source) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)',
      )
      .run(source, at);
    return Promise.resolve();
  }

  sourcesSeen(): Promise<Record<string, string>> {
    const rows = this.db.prepare('SELECT source, last_seen FROM sources ORDER BY source').all() as Array<{
      source: string;
      last_seen: string;
    }>;
    return Promise.resolve(Object.fromEntries(rows.map((r) => [r.source, r.last_seen])));
  }

  /** Unfinished exports' claims given back (a finished export keeps its lapsed claim; it is not counted). */
  releaseClaimsOfEarlierRun(): Promise<number> {
    let count = 0;
    for (const table of ['events', 'shipped', 'items'])
      count += Number(
        this.db.prepare(`UPDATE ${table} SET claim_until = NULL WHERE claim_until IS NOT NULL AND exported = 0`).run()
          .changes,
      );
    return Promise.resolve(count);
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

  close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
    return Promise.resolve();
  }
}
