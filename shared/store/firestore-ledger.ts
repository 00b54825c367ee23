import type { CollectionReference, DocumentReference, Firestore, Query } from '@google-cloud/firestore';
import { type Deploy, type EventKind, ShippedChange } from '../events/model.ts';
import {
  byText,
  type ExportItem,
  type ExportRef,
  type ParkedExport,
  type ExportLedger,
  StoreUnavailable,
} from './store.ts';

import {
  CHANGES_PER_TRANSACTION,
  CLAIM,
  COLLECTIONS,
  COUNTED,
  docId,
  EXPORTED,
  HELD,
  IN_DOUBT,
  PARKED,
  PARKED_BECAUSE,
  PARTS,
  withoutInternal,
} from './firestore-documents.ts';

/**
 * The export ledger on Firestore: claims, parts, in-doubt marks and parks, kept on the documents of
 * the facts they cover (a claim and its fact are read and written in one transaction); and the
 * pipeline's other bookkeeping, backfill cursors and each source's last delivery. The event store
 * (`FirestoreStore`) extends it, so one client serves both interfaces.
 */
export abstract class FirestoreLedger implements ExportLedger {
  protected readonly db: Firestore;

  constructor(db: Firestore) {
    this.db = db;
  }

  protected collection(kind: EventKind): CollectionReference {
    return this.db.collection(COLLECTIONS[kind]);
  }

  protected async guard<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof StoreUnavailable) throw error;
      throw new StoreUnavailable(`Firestore ${what} failed: ${(error as Error).message}`);
    }
  }

  protected async all<T>(query: Query): Promise<T[]> {
    const snapshot = await query.get();
    return snapshot.docs.map((d) => withoutInternal<T>(d.data()));
  }

  putExportItems(items: ExportItem[]): Promise<void> {
    return this.guard('putExportItems', async () => {
      for (const item of items) {
        const ref = this.db.collection('items').doc(docId(item.id));
        await this.db.runTransaction(async (tx) => {
          const data = (await tx.get(ref)).data();
          if (data === undefined) tx.create(ref, { id: item.id, at: item.at, body: item.body, [EXPORTED]: false });
          else if (data[EXPORTED] !== true) tx.update(ref, { at: item.at, body: item.body });
        });
      }
    });
  }

  claimExportItems(ids: string[], now: string, until: string): Promise<string[]> {
    return this.guard('claimExportItems', () => this.claimAll(this.db.collection('items'), ids, now, until));
  }

  markItemsExported(ids: string[]): Promise<void> {
    return this.guard('markItemsExported', async () => {
      if (ids.length === 0) return;
      const batch = this.db.batch();
      for (const id of ids) batch.update(this.db.collection('items').doc(docId(id)), { [EXPORTED]: true });
      await batch.commit();
    });
  }

  unexportedItems(limit: number): Promise<ExportItem[]> {
    return this.guard('unexportedItems', async () => {
      const snapshot = await this.db.collection('items').where(EXPORTED, '==', false).orderBy('at').limit(limit).get();
      return snapshot.docs.map((d) => {
        const data = d.data();
        return { id: String(data.id), at: String(data.at), body: data.body as Record<string, unknown> };
      });
    });
  }

  deployExported(deployId: string): Promise<boolean | undefined> {
    return this.guard('deployExported', async () => {
      const data = (await this.collection('deploy').doc(docId(deployId)).get()).data();
      return data === undefined ? undefined : data[EXPORTED] === true;
    });
  }

  /** The claimed document's data, or undefined when another exporter holds it or it is not to send. */
  private claimData(ref: DocumentReference, now: string, until: string): Promise<Record<string, unknown> | undefined> {
    return this.db.runTransaction(async (tx) => {
      const data = (await tx.get(ref)).data();
      if (data === undefined || data[EXPORTED] !== false) return undefined;
      const held: unknown = data[CLAIM];
      if (typeof held === 'string' && held >= now) return undefined;
      tx.update(ref, { [CLAIM]: until });
      return data;
    });
  }

  /**
   * Claims documents as `claimData` does, each on its own terms, but in one transaction for many
   * (a deploy's shipped changes: one round trip of reads and one commit, not a transaction each).
   * Returns the ids claimed, once each.
   */
  private async claimAll(
    collection: CollectionReference,
    ids: string[],
    now: string,
    until: string,
  ): Promise<string[]> {
    const unique = [...new Set(ids)];
    const claimed: string[] = [];
    for (let i = 0; i < unique.length; i += CHANGES_PER_TRANSACTION) {
      const chunk = unique.slice(i, i + CHANGES_PER_TRANSACTION);
      const refs = chunk.map((id) => collection.doc(docId(id)));
      const mine = await this.db.runTransaction(async (tx) => {
        const snapshots = await tx.getAll(...refs);
        return chunk.filter((_, j) => {
          const snapshot = snapshots[j];
          const data = snapshot?.data();
          if (snapshot === undefined || data === undefined || data[EXPORTED] !== false) return false;
          const held: unknown = data[CLAIM];
          if (typeof held === 'string' && held >= now) return false;
          tx.update(snapshot.ref, { [CLAIM]: until });
          return true;
        });
      });
      claimed.push(...mine);
    }
    return claimed;
  }

  claimDeployExport(deployId: string, now: string, until: string): Promise<string[] | undefined> {
    return this.guard('claimDeployExport', async () => {
      const data = await this.claimData(this.collection('deploy').doc(docId(deployId)), now, until);
      if (data === undefined) return undefined;
      return Array.isArray(data[PARTS]) ? (data[PARTS] as string[]) : [];
    });
  }

  markDeployParts(deployId: string, parts: string[]): Promise<void> {
    return this.guard('markDeployParts', async () => {
      await this.collection('deploy')
        .doc(docId(deployId))
        .update({ [PARTS]: parts });
    });
  }

  private collectionOf(kind: ExportRef['kind']): CollectionReference {
    return kind === 'deploy' ? this.collection('deploy') : this.db.collection(kind === 'shipped' ? 'shipped' : 'items');
  }

  parkExports(exports: ExportRef[], reason: string, at: string): Promise<void> {
    return this.guard('parkExports', async () => {
      for (const { kind, id } of exports) {
        const ref = this.collectionOf(kind).doc(docId(id));
        await this.db.runTransaction(async (tx) => {
          const data = (await tx.get(ref)).data();
          if (data?.[EXPORTED] === false)
            tx.update(ref, { [EXPORTED]: PARKED, [CLAIM]: null, [PARKED_BECAUSE]: { reason, at } });
        });
      }
    });
  }

  markExportsInDoubt(exports: ExportRef[]): Promise<void> {
    return this.guard('markExportsInDoubt', () => this.setExportState(exports, false, IN_DOUBT));
  }

  clearExportsInDoubt(exports: ExportRef[]): Promise<void> {
    return this.guard('clearExportsInDoubt', () => this.setExportState(exports, IN_DOUBT, false));
  }

  /** Each document whose export state is `from` takes `to`: one transaction for many, as `claimAll`. */
  private async setExportState(exports: ExportRef[], from: unknown, to: unknown): Promise<void> {
    const refs = [
      ...new Map(
        exports.map(({ kind, id }) => {
          const ref = this.collectionOf(kind).doc(docId(id));
          return [ref.path, ref];
        }),
      ).values(),
    ];
    for (let i = 0; i < refs.length; i += CHANGES_PER_TRANSACTION) {
      const chunk = refs.slice(i, i + CHANGES_PER_TRANSACTION);
      await this.db.runTransaction(async (tx) => {
        const snapshots = await tx.getAll(...chunk);
        snapshots.forEach((snapshot) => {
          if (snapshot.data()?.[EXPORTED] === from) tx.update(snapshot.ref, { [EXPORTED]: to });
        });
      });
    }
  }

  parkedExports(limit: number): Promise<ParkedExport[]> {
    return this.guard('parkedExports', async () => {
      const lists = await Promise.all(
        (['deploy', 'shipped', 'item'] as const).map(async (kind) => {
          const snapshot = await this.collectionOf(kind).where(EXPORTED, '==', PARKED).limit(limit).get();
          return snapshot.docs.map((d) => {
            const data = d.data();
            const because = data[PARKED_BECAUSE] as { reason: string; at: string };
            return { kind, id: String(data.id), reason: because.reason, at: because.at };
          });
        }),
      );
      return lists
        .flat()
        .sort((a, b) => byText(a.at, b.at) || byText(a.id, b.id))
        .slice(0, limit);
    });
  }

  unparkExports(): Promise<number> {
    return this.guard('unparkExports', async () => {
      let count = 0;
      for (const kind of ['deploy', 'shipped', 'item'] as const) {
        const snapshot = await this.collectionOf(kind).where(EXPORTED, '==', PARKED).get();
        for (const doc of snapshot.docs) {
          await doc.ref.update({ [EXPORTED]: false, [PARKED_BECAUSE]: null });
          count++;
        }
      }
      return count;
    });
  }

  claimShippedExport(ids: string[], now: string, until: string): Promise<string[]> {
    return this.guard('claimShippedExport', () => this.claimAll(this.db.collection('shipped'), ids, now, until));
  }

  releaseExportClaims(deployIds: string[], shippedIds: string[], itemIds: string[] = []): Promise<void> {
    return this.guard('releaseExportClaims', async () => {
      if (deployIds.length + shippedIds.length + itemIds.length === 0) return;
      const batch = this.db.batch();
      for (const id of deployIds) batch.update(this.collection('deploy').doc(docId(id)), { [CLAIM]: null });
      for (const id of shippedIds) batch.update(this.db.collection('shipped').doc(docId(id)), { [CLAIM]: null });
      for (const id of itemIds) batch.update(this.db.collection('items').doc(docId(id)), { [CLAIM]: null });
      await batch.commit();
    });
  }

  markDeployExported(deployId: string): Promise<void> {
    return this.guard('markDeployExported', async () => {
      await this.collection('deploy')
        .doc(docId(deployId))
        .update({ [EXPORTED]: true, [PARTS]: null });
    });
  }

  markShippedExported(ids: string[]): Promise<void> {
    return this.guard('markShippedExported', async () => {
      const batch = this.db.batch();
      for (const id of ids) batch.update(this.db.collection('shipped').doc(docId(id)), { [EXPORTED]: true });
      await batch.commit();
    });
  }

  unexportedDeploys(limit: number): Promise<Deploy[]> {
    return this.guard('unexportedDeploys', () =>
      this.all<Deploy>(this.collection('deploy').where(EXPORTED, '==', false).orderBy('finishedAt').limit(limit)),
    );
  }

  unexportedShipped(limit: number): Promise<ShippedChange[]> {
    return this.guard('unexportedShipped', () =>
      this.all<ShippedChange>(
        this.db
          .collection('shipped')
          .where(HELD, '==', true)
          .where(COUNTED, '==', true)
          .where(EXPORTED, '==', false)
          .orderBy('deployedAt')
          .limit(limit),
      ),
    );
  }

  /** Instances share this store: an earlier run's claims lapse by themselves (`CLAIM_MS`). */
  releaseClaimsOfEarlierRun(): Promise<number> {
    return Promise.resolve(0);
  }

  backfillCursor(key: string): Promise<string | undefined> {
    return this.guard('backfillCursor', async () => {
      const data = (await this.db.collection('cursors').doc(docId(key)).get()).data();
      return typeof data?.value === 'string' ? data.value : undefined;
    });
  }
  putBackfillCursor(key: string, value: string): Promise<void> {
    return this.guard('putBackfillCursor', async () => {
      await this.db.collection('cursors').doc(docId(key)).set({ key, value });
    });
  }
  noteSourceSeen(source: string, at: string): Promise<void> {
    const ref = this.db.collection('sources').doc(docId(source));
    return this.guard('noteSourceSeen', () =>
      this.db.runTransaction(async (tx) => {
        const seen = ((await tx.get(ref)).data() as { lastSeen?: unknown } | undefined)?.lastSeen;
        if (typeof seen === 'string' && seen >= at) return;
        tx.set(ref, { source, lastSeen: at });
      }),
    );
  }
  sourcesSeen(): Promise<Record<string, string>> {
    return this.guard('sourcesSeen', async () => {
      const seen: Record<string, string> = {};
      for (const doc of (await this.db.collection('sources').get()).docs) {
        const { source, lastSeen } = doc.data() as { source?: unknown; lastSeen?: unknown };
        if (typeof source === 'string' && typeof lastSeen === 'string') seen[source] = lastSeen;
      }
      return seen;
    });
  }
}
