import type { DatabaseSync } from 'node:sqlite';
import { openDatabase } from './sqlite-file.ts';
import { type Deploy, ShippedChange } from '../events/model.ts';
import {
  byText,
  type ExportItem,
  type ExportRef,
  type ParkedExport,
  type ExportLedger,
  StoreUnavailable,
} from './store.ts';

import { prepareStatements, SCHEMA } from './sqlite-schema.ts';

/**
 * The export ledger on SQLite (claims, parts, in-doubt marks, parks: columns beside each fact,
 * written in the same transactions), the pipeline's other bookkeeping (backfill cursors, each
 * source's last delivery), and the file itself. The event store (`SqliteStore`) extends it.
 */
export abstract class SqliteLedger implements ExportLedger {
  protected readonly db: DatabaseSync;
  protected readonly statements: ReturnType<typeof prepareStatements>;

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

  /** Runs `work` in one write transaction: all of it is stored, or none. */
  protected transaction<T>(work: () => T): Promise<T> {
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

  protected bodies<T>(rows: unknown[]): T[] {
    return (rows as Array<{ body: string }>).map((r) => JSON.parse(r.body) as T);
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

  close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
    return Promise.resolve();
  }
}
