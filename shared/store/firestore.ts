import type { CollectionReference, DocumentReference, Firestore, Query } from '@google-cloud/firestore';
import {
  CanonicalEvent,
  type Change,
  type Commit,
  type Deploy,
  type EventKind,
  type Incident,
  type PullRequest,
  type Push,
  ShippedChange,
  commitId,
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

const COLLECTIONS: Record<EventKind, string> = {
  deploy: 'deploys',
  commit: 'commits',
  pull_request: 'pull_requests',
  push: 'pushes',
  incident: 'incidents',
};
/** The field each collection is ordered and filtered by in time. */
const TIME_FIELD: Record<EventKind, string> = {
  deploy: 'finishedAt',
  commit: 'timestamp',
  pull_request: 'mergedAt',
  push: 'pushedAt',
  incident: 'startedAt',
};
/** Bookkeeping fields beside each stored fact (never part of it). */
const SHIPS = '_ships';
const SHIP_ORDER = '_shipOrder';
const WATCHING = '_watching';
const RESOLVED_FIRST = '_resolvedFirst';
const EXPORTED = '_exported';
const CLAIM = '_exportClaimUntil';
/** A shipped change no deploy holds now (released, until a later deploy takes it). */
const HELD = '_held';
/**
 * On a deploy: the shipped documents its last `recordShipped` took (a superset of those it still
 * holds: an earlier deploy may have taken some over since). Read by id in the next one's
 * transaction instead of querying `shipped` for them, so concurrent records of different deploys
 * lock only their own documents. Deploys stored before it existed have none: they are queried.
 */
const HOLDS = '_holds';
/** False for a first deploy's earlier history: held, never counted nor exported. */
const COUNTED = '_counted';
/** A deploy's export parts already sent, when it stopped part-way. */
const PARTS = '_exportedParts';
/** `_exported` of an export Datadog refused for good, and why. */
const PARKED = 'parked';
/** `_exported` of additive values whose request was in flight: never sent again. */
const IN_DOUBT = 'doubt';
const PARKED_BECAUSE = '_parked';
/** Firestore's limit on the values of one `in` filter. */
const IN_LIMIT = 30;
/** A transaction writes at most 500 documents: a push of GitHub's 2,048 commits takes six. */
const CHANGES_PER_TRANSACTION = 400;
const ALREADY_EXISTS = 6;

/** Firestore document ids may not contain `/`; canonical ids do (`owner/name@sha`). */
const docId = (id: string) => encodeURIComponent(id);

// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names what its query reads
function withoutInternal<T>(data: Record<string, unknown>): T {
  const {
    [SHIPS]: _ships,
    [SHIP_ORDER]: _order,
    [WATCHING]: _watching,
    [RESOLVED_FIRST]: _resolvedFirst,
    [EXPORTED]: _exported,
    [CLAIM]: _claim,
    [HELD]: _held,
    [HOLDS]: _holds,
    [COUNTED]: _counted,
    [PARTS]: _parts,
    [PARKED_BECAUSE]: _parked,
    ...event
  } = data;
  return event as T;
}

/**
 * The cloud store: one collection per kind, documents keyed by the canonical id, so a
 * create-if-absent (`create`, which fails on an existing document) stores each fact once.
 * The queries below need the composite indexes declared in infra/ (the emulator needs none).
 */
export class FirestoreStore implements Store {
  private readonly db: Firestore;

  constructor(db: Firestore) {
    this.db = db;
  }

  static async connect(projectId: string | undefined): Promise<FirestoreStore> {
    // The CommonJS package's exports object (`default`): Node gives it to an import, and so does the
    // esbuild bundle, which carries the client inside it (build/bundle.js) but names no exports.
    const { Firestore } = (await import('@google-cloud/firestore')).default;
    return new FirestoreStore(
      new Firestore({ ignoreUndefinedProperties: true, ...(projectId === undefined ? {} : { projectId }) }),
    );
  }

  private collection(kind: EventKind): CollectionReference {
    return this.db.collection(COLLECTIONS[kind]);
  }

  private async guard<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      if (error instanceof StoreUnavailable) throw error;
      throw new StoreUnavailable(`Firestore ${what} failed: ${(error as Error).message}`);
    }
  }

  putDeploy(deploy: Deploy, options: { shipsChanges: boolean }): Promise<PutDeployResult> {
    const ref = this.collection('deploy').doc(docId(deploy.id));
    const bookkeeping = {
      [SHIPS]: options.shipsChanges,
      [SHIP_ORDER]: options.shipsChanges ? shipOrder(deploy) : null,
      [EXPORTED]: false,
    };
    return this.guard('putDeploy', () =>
      this.db.runTransaction(async (tx) => {
        const snapshot = await tx.get(ref);
        if (!snapshot.exists) {
          tx.create(ref, { ...deploy, ...bookkeeping, [WATCHING]: [], [HOLDS]: [] });
          return { result: 'created' as const, before: undefined };
        }
        const data = snapshot.data() ?? {};
        const before = withoutInternal<Deploy>(data);
        if (!supersedes(deploy, before)) return { result: 'unchanged' as const, before };
        // The fact changed: it is exported again.
        tx.set(ref, {
          ...deploy,
          ...bookkeeping,
          [WATCHING]: (data[WATCHING] as string[] | undefined) ?? [],
          // Still held until its next record says otherwise (undefined, for a deploy stored before it, is left out).
          [HOLDS]: data[HOLDS] as string[] | undefined,
        });
        return { result: 'updated' as const, before };
      }),
    );
  }

  deploy(id: string): Promise<Deploy | undefined> {
    return this.guard('deploy', async () => {
      const snapshot = await this.collection('deploy').doc(docId(id)).get();
      const data = snapshot.data();
      return data === undefined ? undefined : withoutInternal<Deploy>(data);
    });
  }

  putChange(change: Change, options: { onDefaultBranch?: boolean } = {}): Promise<PutResult> {
    const ref = this.collection(change.kind).doc(docId(change.id));
    if (change.kind === 'commit' || change.kind === 'push') {
      return this.guard('putChange', () =>
        this.db.runTransaction(async (tx) => {
          const snapshot = await tx.get(ref);
          if (!snapshot.exists) {
            tx.create(ref, change);
            return 'created' as const;
          }
          const merged =
            change.kind === 'commit'
              ? mergeCommit(snapshot.data() as Commit, change, options)
              : mergePush(snapshot.data() as Push, change);
          if (merged === undefined) return 'unchanged' as const;
          tx.set(ref, merged);
          return 'updated' as const;
        }),
      );
    }
    return this.guard('putChange', async () => {
      try {
        await ref.create(change);
        return 'created';
      } catch (error) {
        if ((error as { code?: number }).code === ALREADY_EXISTS) return 'unchanged';
        throw error;
      }
    });
  }

  putChanges(changes: ReadonlyArray<{ change: Change; onDefaultBranch?: boolean }>): Promise<PutResult[]> {
    return this.guard('putChanges', async () => {
      const results: PutResult[] = [];
      for (let i = 0; i < changes.length; i += CHANGES_PER_TRANSACTION)
        results.push(...(await this.putChangesTogether(changes.slice(i, i + CHANGES_PER_TRANSACTION))));
      return results;
    });
  }

  /** One transaction: every document read in one `getAll`, each change applied in order in memory, one commit. */
  private putChangesTogether(
    changes: ReadonlyArray<{ change: Change; onDefaultBranch?: boolean }>,
  ): Promise<PutResult[]> {
    if (changes.length === 0) return Promise.resolve([]);
    // One alone takes putChange's way: a pull request is created in one round trip, no transaction.
    const [only] = changes;
    if (changes.length === 1 && only !== undefined)
      return this.putChange(only.change, only.onDefaultBranch === undefined ? {} : only).then((result) => [result]);
    const refs = new Map<string, DocumentReference>();
    for (const { change } of changes) {
      const ref = this.collection(change.kind).doc(docId(change.id));
      refs.set(ref.path, ref);
    }
    return this.db.runTransaction(async (tx) => {
      const snapshots = await tx.getAll(...refs.values());
      const docs = new Map(
        snapshots.map((snapshot) => [
          snapshot.ref.path,
          { stored: snapshot.exists, data: snapshot.data() as Change | undefined, dirty: false },
        ]),
      );
      const results = changes.map(({ change, onDefaultBranch }): PutResult => {
        const doc = docs.get(this.collection(change.kind).doc(docId(change.id)).path);
        if (doc === undefined) throw new Error(`no snapshot read for ${change.id}`);
        if (doc.data === undefined) {
          Object.assign(doc, { data: change, dirty: true });
          return 'created';
        }
        const merged =
          change.kind === 'commit' && doc.data.kind === 'commit'
            ? mergeCommit(doc.data, change, onDefaultBranch === undefined ? {} : { onDefaultBranch })
            : change.kind === 'push' && doc.data.kind === 'push'
              ? mergePush(doc.data, change)
              : undefined;
        if (merged === undefined) return 'unchanged';
        Object.assign(doc, { data: merged, dirty: true });
        return 'updated';
      });
      for (const [path, doc] of docs) {
        const ref = refs.get(path);
        if (!doc.dirty || ref === undefined || doc.data === undefined) continue;
        if (doc.stored) tx.set(ref, doc.data);
        else tx.create(ref, doc.data);
      }
      return results;
    });
  }

  putIncident(incident: Incident): Promise<{ result: PutResult; incident: Incident }> {
    const ref = this.collection('incident').doc(docId(incident.id));
    return this.guard('putIncident', () =>
      this.db.runTransaction(async (tx) => {
        const snapshot = await tx.get(ref);
        if (!snapshot.exists) {
          tx.create(ref, incident);
          return { result: 'created' as const, incident };
        }
        const stored = snapshot.data() as Incident;
        const merged = mergeIncident(stored, incident);
        if (merged === undefined) return { result: 'unchanged' as const, incident: stored };
        tx.set(ref, merged);
        return { result: 'updated' as const, incident: merged };
      }),
    );
  }

  incident(id: string): Promise<Incident | undefined> {
    return this.guard('incident', async () => {
      const snapshot = await this.collection('incident').doc(docId(id)).get();
      return snapshot.exists ? (snapshot.data() as Incident) : undefined;
    });
  }

  incidentsBetween(from: string, to: string): Promise<Incident[]> {
    return this.guard('incidentsBetween', () =>
      this.all<Incident>(
        this.collection('incident').where('startedAt', '>=', from).where('startedAt', '<', to).orderBy('startedAt'),
      ),
    );
  }

  private async all<T>(query: Query): Promise<T[]> {
    const snapshot = await query.get();
    return snapshot.docs.map((d) => withoutInternal<T>(d.data()));
  }

  previousSuccessfulDeploy(service: string, environment: string, before: string): Promise<Deploy | undefined> {
    return this.guard('previousSuccessfulDeploy', async () => {
      const query = this.collection('deploy')
        .where('service', '==', service)
        .where('environment', '==', environment)
        .where('status', '==', 'success')
        .where('finishedAt', '<', before)
        .orderBy('finishedAt', 'desc')
        .limit(1);
      return (await this.all<Deploy>(query))[0];
    });
  }

  nextSuccessfulDeploy(service: string, environment: string, after: string): Promise<Deploy | undefined> {
    return this.guard('nextSuccessfulDeploy', async () => {
      const query = this.collection('deploy')
        .where('service', '==', service)
        .where('environment', '==', environment)
        .where('status', '==', 'success')
        .where('finishedAt', '>', after)
        .orderBy('finishedAt')
        .limit(1);
      return (await this.all<Deploy>(query))[0];
    });
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

  previousShippingDeploy(service: string, order: string): Promise<Deploy | undefined> {
    return this.guard('previousShippingDeploy', async () => {
      const query = this.collection('deploy')
        .where('service', '==', service)
        .where(SHIPS, '==', true)
        .where(SHIP_ORDER, '<', order)
        .orderBy(SHIP_ORDER, 'desc')
        .limit(1);
      return (await this.all<Deploy>(query))[0];
    });
  }

  laterFirstDeploys(service: string, order: string): Promise<Deploy[]> {
    return this.guard('laterFirstDeploys', () =>
      this.all<Deploy>(
        this.collection('deploy')
          .where('service', '==', service)
          .where(SHIPS, '==', true)
          .where(RESOLVED_FIRST, '==', true)
          .where(SHIP_ORDER, '>', order)
          .orderBy(SHIP_ORDER),
      ),
    );
  }

  nextShippingDeploys(service: string, order: string, limit: number): Promise<Deploy[]> {
    return this.guard('nextShippingDeploys', () =>
      this.all<Deploy>(
        this.collection('deploy')
          .where('service', '==', service)
          .where(SHIPS, '==', true)
          .where(SHIP_ORDER, '>', order)
          .orderBy(SHIP_ORDER)
          .limit(limit),
      ),
    );
  }

  shippingDeploysAt(repository: string, sha: string): Promise<Deploy[]> {
    return this.guard('shippingDeploysAt', async () => {
      const deploys = await this.all<Deploy>(
        this.collection('deploy')
          .where('repository', '==', repository)
          .where('commitSha', '==', sha)
          .where(SHIPS, '==', true),
      );
      return deploys.sort((a, b) => byText(shipOrder(a), shipOrder(b)));
    });
  }

  pushesTo(repository: string, sha: string): Promise<Push[]> {
    return this.guard('pushesTo', async () =>
      (
        await this.all<Push>(this.collection('push').where('repository', '==', repository).where('after', '==', sha))
      ).sort(byPushedAt),
    );
  }

  commit(repository: string, sha: string): Promise<Commit | undefined> {
    return this.guard('commit', async () => (await this.commitsById(repository, [sha]))[0]);
  }

  commits(repository: string, shas: readonly string[]): Promise<Commit[]> {
    return this.guard('commits', () => this.commitsById(repository, shas));
  }

  /** One batched read (`getAll`) for every commit asked for. */
  private async commitsById(repository: string, shas: readonly string[]): Promise<Commit[]> {
    if (shas.length === 0) return [];
    const refs = shas.map((sha) => this.collection('commit').doc(docId(commitId(repository, sha))));
    const snapshots = await this.db.getAll(...refs);
    return snapshots.filter((s) => s.exists).map((s) => s.data() as Commit);
  }

  pullRequestByMergeSha(repository: string, sha: string): Promise<PullRequest | undefined> {
    return this.guard('pullRequestByMergeSha', async () => {
      const query = this.collection('pull_request')
        .where('repository', '==', repository)
        .where('mergeCommitSha', '==', sha)
        .limit(1);
      return (await this.all<PullRequest>(query))[0];
    });
  }

  pullRequestsByMergeShas(repository: string, shas: readonly string[]): Promise<PullRequest[]> {
    return this.guard('pullRequestsByMergeShas', async () => {
      const chunks: string[][] = [];
      for (let i = 0; i < shas.length; i += IN_LIMIT) chunks.push(shas.slice(i, i + IN_LIMIT));
      const lists = await Promise.all(
        chunks.map((chunk) =>
          this.all<PullRequest>(
            this.collection('pull_request').where('repository', '==', repository).where('mergeCommitSha', 'in', chunk),
          ),
        ),
      );
      return lists.flat().sort((a, b) => a.number - b.number);
    });
  }

  deploysWatching(repository: string, sha: string): Promise<Deploy[]> {
    return this.guard('deploysWatching', async () => {
      const deploys = await this.all<Deploy>(
        this.collection('deploy').where('repository', '==', repository).where(WATCHING, 'array-contains', sha),
      );
      return deploys.sort((a, b) => byText(shipOrder(a), shipOrder(b)));
    });
  }

  recordShipped(deploy: Deploy, record: ShippedRecord): Promise<{ toExport: ShippedChange[]; released: string[] }> {
    const order = shipOrder(deploy);
    const changes = [
      ...record.shipped.map((change) => ({ change, counted: true })),
      ...record.baseline.map((change) => ({ change, counted: false })),
    ];
    const shippedDocs = this.db.collection('shipped');
    const refs = changes.map(({ change }) => shippedDocs.doc(docId(change.id)));
    const deployRef = this.collection('deploy').doc(docId(deploy.id));
    return this.guard('recordShipped', () =>
      this.db.runTransaction(async (tx) => {
        const [deploySnapshot, ...snapshots] = await tx.getAll(deployRef, ...refs);
        // The shipped documents this deploy holds now: those its last record took, still its own.
        const holds = deploySnapshot?.data()?.[HOLDS] as string[] | undefined;
        let heldDocs: Array<{ id: string; data: Record<string, unknown> }>;
        if (holds === undefined) {
          const query = shippedDocs.where('deployId', '==', deploy.id).where(HELD, '==', true);
          heldDocs = (await tx.get(query)).docs.map((d) => ({ id: d.id, data: d.data() }));
        } else {
          const read = new Map(refs.map((ref, i) => [ref.id, snapshots[i]]));
          const unread = holds.filter((id) => !read.has(id));
          if (unread.length > 0) {
            const more = await tx.getAll(...unread.map((id) => shippedDocs.doc(id)));
            unread.forEach((id, i) => read.set(id, more[i]));
          }
          heldDocs = holds.flatMap((id) => {
            const data = read.get(id)?.data();
            return data !== undefined && data.deployId === deploy.id && data[HELD] === true ? [{ id, data }] : [];
          });
        }
        const held = new Set(heldDocs.map((d) => d.id));
        const taken: string[] = [];
        const toExport: ShippedChange[] = [];
        changes.forEach(({ change, counted }, i) => {
          const ref = refs[i] ?? shippedDocs.doc(docId(change.id));
          const data = snapshots[i]?.data();
          held.delete(ref.id);
          if (data === undefined) {
            tx.create(ref, { ...change, [HELD]: true, [SHIP_ORDER]: order, [COUNTED]: counted, [EXPORTED]: false });
            taken.push(ref.id);
            if (counted) toExport.push(change);
            return;
          }
          const mine = data.deployId === deploy.id && data[HELD] === true;
          const holder = data[HELD] === true ? (data[SHIP_ORDER] as string) : undefined;
          // An earlier deploy holds it: it is that deploy's. Else it is this one's, export state kept.
          if (!mine && holder !== undefined && holder < order) return;
          taken.push(ref.id);
          tx.set(ref, {
            ...change,
            [HELD]: true,
            [SHIP_ORDER]: order,
            [COUNTED]: counted,
            [EXPORTED]: data[EXPORTED] === true,
            [CLAIM]: (data[CLAIM] as string | null | undefined) ?? null,
          });
          if (counted && data[EXPORTED] !== true) toExport.push(change);
        });
        for (const id of held) tx.update(shippedDocs.doc(id), { [HELD]: false, [SHIP_ORDER]: null });
        tx.update(deployRef, {
          [WATCHING]: [...new Set(record.watching)],
          [RESOLVED_FIRST]: record.first,
          [HOLDS]: [...new Set(taken)],
        });
        const released = heldDocs.filter((d) => held.has(d.id)).map((d) => String(d.data.id));
        return { toExport, released };
      }),
    );
  }

  shippedBy(deployId: string): Promise<ShippedChange[]> {
    return this.guard('shippedBy', async () => {
      const snapshot = await this.db
        .collection('shipped')
        .where('deployId', '==', deployId)
        .where(HELD, '==', true)
        .where(COUNTED, '==', true)
        .get();
      return snapshot.docs
        .map((d) => ShippedChange.parse(withoutInternal(d.data())))
        .sort((a, b) => byText(a.id, b.id));
    });
  }

  deploysBetween(from: string, to: string, of?: { service: string; environment: string }): Promise<Deploy[]> {
    return this.guard('deploysBetween', () => {
      let query: Query = this.collection('deploy');
      if (of !== undefined) query = query.where('service', '==', of.service).where('environment', '==', of.environment);
      return this.all<Deploy>(query.where('finishedAt', '>=', from).where('finishedAt', '<', to).orderBy('finishedAt'));
    });
  }

  commitsBetween(from: string, to: string): Promise<Commit[]> {
    return this.guard('commitsBetween', () =>
      this.all<Commit>(
        this.collection('commit').where('timestamp', '>=', from).where('timestamp', '<', to).orderBy('timestamp'),
      ),
    );
  }

  pullRequestsBetween(from: string, to: string): Promise<PullRequest[]> {
    return this.guard('pullRequestsBetween', () =>
      this.all<PullRequest>(
        this.collection('pull_request').where('mergedAt', '>=', from).where('mergedAt', '<', to).orderBy('mergedAt'),
      ),
    );
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

  shippedBetween(from: string, to: string): Promise<ShippedChange[]> {
    return this.guard('shippedBetween', () =>
      this.all<ShippedChange>(
        this.db
          .collection('shipped')
          .where(HELD, '==', true)
          .where(COUNTED, '==', true)
          .where('deployedAt', '>=', from)
          .where('deployedAt', '<', to)
          .orderBy('deployedAt'),
      ),
    );
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

  events(filter: EventFilter): Promise<CanonicalEvent[]> {
    return this.guard('events', async () => {
      const kinds = filter.kind === undefined ? (Object.keys(COLLECTIONS) as EventKind[]) : [filter.kind];
      const lists = await Promise.all(
        kinds.map(async (kind) => {
          let query: Query = this.collection(kind);
          if (filter.since !== undefined) query = query.where(TIME_FIELD[kind], '>=', filter.since);
          return (await this.all<unknown>(query.orderBy(TIME_FIELD[kind]))).map((e) => CanonicalEvent.parse(e));
        }),
      );
      return lists.flat().sort((a, b) => byText(timeOf(a), timeOf(b)) || byText(a.id, b.id));
    });
  }

  async close(): Promise<void> {
    await this.db.terminate();
  }
}
