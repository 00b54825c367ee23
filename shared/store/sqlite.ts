import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import {
  CanonicalEvent,
  type Change,
  type Commit,
  type Deploy,
  type PullRequest,
  type Push,
  ShippedChange,
} from '../events.ts';
import { type EventFilter, type PutResult, type Store, supersedes, timeOf } from './store.ts';

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
  awaiting INTEGER NOT NULL DEFAULT 0,
  exported INTEGER NOT NULL DEFAULT 0,
  claim_until TEXT,
  body TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS events_unexported ON events (kind, time) WHERE exported = 0;
CREATE INDEX IF NOT EXISTS events_by_sha ON events (kind, repository, sha, time);
CREATE INDEX IF NOT EXISTS events_by_deploy ON events (kind, service, environment, status, time);
CREATE INDEX IF NOT EXISTS events_by_time ON events (kind, time);
CREATE INDEX IF NOT EXISTS events_awaiting ON events (repository, awaiting) WHERE awaiting = 1;
CREATE TABLE IF NOT EXISTS shipped (
  id TEXT PRIMARY KEY,
  deploy_id TEXT NOT NULL,
  deployed_at TEXT NOT NULL,
  exported INTEGER NOT NULL DEFAULT 0,
  claim_until TEXT,
  body TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS shipped_by_time ON shipped (deployed_at);
CREATE INDEX IF NOT EXISTS shipped_unexported ON shipped (deployed_at) WHERE exported = 0;
CREATE INDEX IF NOT EXISTS shipped_by_deploy ON shipped (deploy_id);
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
  }
}

function prepareStatements(db: DatabaseSync) {
  const prepare = (sql: string): StatementSync => db.prepare(sql);
  return {
    insert: prepare(
      `INSERT INTO events (id, kind, time, repository, sha, service, environment, status, awaiting, body)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
    ),
    get: prepare('SELECT body, awaiting, exported FROM events WHERE id = ?'),
    update: prepare(
      `UPDATE events SET time = ?, repository = ?, sha = ?, service = ?, environment = ?, status = ?,
       awaiting = max(awaiting, ?), exported = 0, claim_until = NULL, body = ? WHERE id = ?`,
    ),
    previous: prepare(
      `SELECT body FROM events WHERE kind = 'deploy' AND service = ? AND environment = ? AND status = 'success'
       AND time < ? ORDER BY time DESC LIMIT 1`,
    ),
    bySha: prepare('SELECT body FROM events WHERE kind = ? AND repository = ? AND sha = ? ORDER BY time'),
    awaiting: prepare(`SELECT body FROM events WHERE repository = ? AND awaiting = 1 ORDER BY time`),
    clearAwaiting: prepare('UPDATE events SET awaiting = 0 WHERE id = ?'),
    insertShipped: prepare(
      'INSERT INTO shipped (id, deploy_id, deployed_at, body) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING',
    ),
    deploysBetween: prepare(
      "SELECT body FROM events WHERE kind = 'deploy' AND time >= ? AND time < ? ORDER BY time, id",
    ),
    deploysOfBetween: prepare(
      "SELECT body FROM events WHERE kind = 'deploy' AND service = ? AND environment = ? AND time >= ? AND time < ? ORDER BY time, id",
    ),
    kindBetween: prepare('SELECT body FROM events WHERE kind = ? AND time >= ? AND time < ? ORDER BY time, id'),
    markExported: prepare('UPDATE events SET exported = 1 WHERE id = ?'),
    markShippedExported: prepare('UPDATE shipped SET exported = 1 WHERE id = ?'),
    claimDeploy: prepare(
      "UPDATE events SET claim_until = ? WHERE id = ? AND kind = 'deploy' AND exported = 0 AND (claim_until IS NULL OR claim_until < ?)",
    ),
    claimShipped: prepare(
      'UPDATE shipped SET claim_until = ? WHERE id = ? AND exported = 0 AND (claim_until IS NULL OR claim_until < ?)',
    ),
    releaseDeploy: prepare('UPDATE events SET claim_until = NULL WHERE id = ?'),
    releaseShipped: prepare('UPDATE shipped SET claim_until = NULL WHERE id = ?'),
    shippedBetween: prepare(
      'SELECT body FROM shipped WHERE deployed_at >= ? AND deployed_at < ? ORDER BY deployed_at, id',
    ),
    unexported: prepare("SELECT body FROM events WHERE kind = 'deploy' AND exported = 0 ORDER BY time LIMIT ?"),
    unexportedShipped: prepare('SELECT body FROM shipped WHERE exported = 0 ORDER BY deployed_at LIMIT ?'),
    shippedBy: prepare('SELECT body FROM shipped WHERE deploy_id = ? ORDER BY id'),
  };
}

/** The embedded store: one SQLite file (node:sqlite), for `npm start` and tests. */
export class SqliteStore implements Store {
  private readonly db: DatabaseSync;
  private readonly statements: ReturnType<typeof prepareStatements>;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.db = new DatabaseSync(path);
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;');
    this.db.exec(SCHEMA);
    this.statements = prepareStatements(this.db);
  }

  private row(event: CanonicalEvent): [string | null, string | null, string | null, string | null] {
    return event.kind === 'deploy'
      ? [event.repository ?? null, shaOf(event), event.service, event.environment]
      : [event.repository, shaOf(event), null, null];
  }

  putDeploy(deploy: Deploy, options: { awaitingLeadTime: boolean }): Promise<PutResult> {
    const [repository, sha, service, environment] = this.row(deploy);
    const awaiting = options.awaitingLeadTime ? 1 : 0;
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
        awaiting,
        body,
      );
      let result: PutResult = 'created';
      if (inserted.changes === 0) {
        const stored = this.statements.get.get(deploy.id) as { body: string } | undefined;
        const previous = stored === undefined ? undefined : (JSON.parse(stored.body) as Deploy);
        if (previous !== undefined && supersedes(deploy, previous)) {
          this.statements.update.run(
            deploy.finishedAt,
            repository,
            sha,
            service,
            environment,
            deploy.status,
            awaiting,
            body,
            deploy.id,
          );
          result = 'updated';
        } else {
          result = 'unchanged';
        }
      }
      return result;
    });
  }

  deploy(id: string): Promise<Deploy | undefined> {
    const row = this.statements.get.get(id) as { body: string } | undefined;
    const event = row === undefined ? undefined : (JSON.parse(row.body) as CanonicalEvent);
    return Promise.resolve(event?.kind === 'deploy' ? event : undefined);
  }

  putChange(change: Change): Promise<PutResult> {
    const [repository, sha] = this.row(change);
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
      JSON.stringify(change),
    );
    return Promise.resolve(inserted.changes === 1 ? 'created' : 'unchanged');
  }

  previousSuccessfulDeploy(service: string, environment: string, before: string): Promise<Deploy | undefined> {
    const row = this.statements.previous.get(service, environment, before) as { body: string } | undefined;
    return Promise.resolve(row === undefined ? undefined : (JSON.parse(row.body) as Deploy));
  }

  private bySha<T>(kind: string, repository: string, sha: string): T[] {
    return (this.statements.bySha.all(kind, repository, sha) as Array<{ body: string }>).map(
      (r) => JSON.parse(r.body) as T,
    );
  }

  pushesTo(repository: string, sha: string): Promise<Push[]> {
    return Promise.resolve(this.bySha<Push>('push', repository, sha));
  }

  commit(repository: string, sha: string): Promise<Commit | undefined> {
    return Promise.resolve(this.bySha<Commit>('commit', repository, sha)[0]);
  }

  pullRequestByMergeSha(repository: string, sha: string): Promise<PullRequest | undefined> {
    return Promise.resolve(this.bySha<PullRequest>('pull_request', repository, sha)[0]);
  }

  deploysAwaitingLeadTime(repository: string): Promise<Deploy[]> {
    const rows = this.statements.awaiting.all(repository) as Array<{ body: string }>;
    return Promise.resolve(rows.map((r) => JSON.parse(r.body) as Deploy));
  }

  recordShipped(deployId: string, shipped: ShippedChange[]): Promise<ShippedChange[]> {
    return this.transaction(() => {
      const created: ShippedChange[] = [];
      for (const change of shipped) {
        const inserted = this.statements.insertShipped.run(
          change.id,
          deployId,
          change.deployedAt,
          JSON.stringify(change),
        );
        if (inserted.changes === 1) created.push(change);
      }
      this.statements.clearAwaiting.run(deployId);
      return created;
    });
  }

  /** Runs `work` in one write transaction: all of it is stored, or none. */
  private transaction<T>(work: () => T): Promise<T> {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const result = work();
      this.db.exec('COMMIT');
      return Promise.resolve(result);
    } catch (error) {
      this.db.exec('ROLLBACK');
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

  claimDeployExport(deployId: string, now: string, until: string): Promise<boolean> {
    return Promise.resolve(this.statements.claimDeploy.run(until, deployId, now).changes === 1);
  }

  claimShippedExport(ids: string[], now: string, until: string): Promise<string[]> {
    return Promise.resolve(ids.filter((id) => this.statements.claimShipped.run(until, id, now).changes === 1));
  }

  releaseExportClaims(deployIds: string[], shippedIds: string[]): Promise<void> {
    for (const id of deployIds) this.statements.releaseDeploy.run(id);
    for (const id of shippedIds) this.statements.releaseShipped.run(id);
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

  /** SQLite's plan for each lookup `process` runs per delivery: each must search an index, never scan. */
  explainLookups(): Record<string, string> {
    const lookups = ['previous', 'bySha', 'awaiting', 'shippedBy', 'get'] as const;
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
