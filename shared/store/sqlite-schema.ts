import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { CanonicalEvent } from '../events/model.ts';

/**
 * How the SQLite store lays out its file: one table of events with the export ledger's columns
 * beside each fact, the lead-time tables, and every statement both halves of the store run,
 * prepared once.
 */

export const SCHEMA = `
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
CREATE INDEX IF NOT EXISTS events_by_repository ON events (kind, repository, time);
-- A service's deploys to an environment in a time window (its count bucket, its restores): without it
-- the planner took events_by_time and read every deploy in the window, all services'.
CREATE INDEX IF NOT EXISTS events_by_service_time ON events (kind, service, environment, time);
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

export function shaOf(event: CanonicalEvent): string | null {
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

export function prepareStatements(db: DatabaseSync) {
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
    commitsBefore: prepare(
      "SELECT body FROM events WHERE kind = 'commit' AND repository = ? AND time <= ? ORDER BY time DESC, id LIMIT ?",
    ),
    pushesSince: prepare(
      "SELECT body FROM events WHERE kind = 'push' AND repository = ? AND time >= ? ORDER BY time, id",
    ),
    shippingSince: prepare(
      "SELECT body FROM events WHERE kind = 'deploy' AND repository = ? AND ships = 1 AND time >= ? ORDER BY time, id",
    ),
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
    claimCreatedDeploy: prepare("UPDATE events SET claim_until = ? WHERE id = ? AND kind = 'deploy'"),
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
