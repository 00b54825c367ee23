import type { DocumentReference, Query } from '@google-cloud/firestore';
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

import { FirestoreLedger } from './firestore-ledger.ts';
import {
  ALREADY_EXISTS,
  CHANGES_PER_TRANSACTION,
  CLAIM,
  COLLECTIONS,
  COUNTED,
  docId,
  EXPORTED,
  HELD,
  HOLDS,
  IN_LIMIT,
  RESOLVED_FIRST,
  SHIP_ORDER,
  SHIPS,
  TIME_FIELD,
  WATCHING,
  withoutInternal,
} from './firestore-documents.ts';
/** An auth client that sends the emulator's own token and looks for no Google credentials. */
async function emulatorAuth() {
  const { OAuth2Client } = (await import('google-auth-library')).default;
  const client = new OAuth2Client();
  client.setCredentials({ access_token: 'owner' });
  return client;
}

/**
 * The cloud store: one collection per kind, documents keyed by the canonical id, so a
 * create-if-absent (`create`, which fails on an existing document) stores each fact once.
 * The queries below need the composite indexes declared in infra/ (the emulator needs none).
 */
export class FirestoreStore extends FirestoreLedger implements Store {
  /**
   * `preferRest` talks HTTP/1.1 REST for every call the store makes (the client keeps gRPC for
   * listeners, which DevStats never opens), so on Google Cloud gRPC's stack is never loaded. It is
   * off by default: measured against the emulator (bench/cold.ts), where the client loads gRPC for
   * its insecure channel either way, REST's cold start was the slower. Against the emulator REST
   * sends the emulator's `Bearer owner` through an auth client that looks for no credentials.
   */
  static async connect(projectId: string | undefined, options: { preferRest?: boolean } = {}): Promise<FirestoreStore> {
    const preferRest = options.preferRest ?? false;
    // The CommonJS package's exports object (`default`): Node gives it to an import, and so does the
    // esbuild bundle, which carries the client inside it (build/bundle.js) but names no exports.
    const { Firestore } = (await import('@google-cloud/firestore')).default;
    const emulated = preferRest && process.env.FIRESTORE_EMULATOR_HOST !== undefined;
    return new FirestoreStore(
      new Firestore({
        ignoreUndefinedProperties: true,
        preferRest,
        ...(projectId === undefined ? {} : { projectId }),
        ...(emulated ? { authClient: await emulatorAuth() } : {}),
      }),
    );
  }

  putDeploy(deploy: Deploy, options: { shipsChanges: boolean; claimUntil?: string }): Promise<PutDeployResult> {
    const ref = this.collection('deploy').doc(docId(deploy.id));
    const bookkeeping = {
      [SHIPS]: options.shipsChanges,
      [SHIP_ORDER]: options.shipsChanges ? shipOrder(deploy) : null,
      [EXPORTED]: false,
    };
    const claim = options.claimUntil === undefined ? {} : { [CLAIM]: options.claimUntil };
    const fresh = { ...deploy, ...bookkeeping, [WATCHING]: [], [HOLDS]: [], ...claim };
    const created =
      options.claimUntil === undefined
        ? { result: 'created' as const, before: undefined }
        : { result: 'created' as const, before: undefined, claimed: true as const };
    return this.guard('putDeploy', async () => {
      // Most deploys are new: one create, which Firestore refuses if the document exists (one round
      // trip, not a transaction's read and commit). Only then is the stored one read and compared.
      try {
        await ref.create(fresh);
        return created;
      } catch (error) {
        if ((error as { code?: number }).code !== ALREADY_EXISTS) throw error;
      }
      return this.db.runTransaction(async (tx) => {
        const snapshot = await tx.get(ref);
        if (!snapshot.exists) {
          tx.create(ref, fresh);
          return created;
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
      });
    });
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

  commitsBefore(repository: string, at: string, limit: number): Promise<Commit[]> {
    return this.guard('commitsBefore', () =>
      this.all<Commit>(
        this.collection('commit')
          .where('repository', '==', repository)
          .where('timestamp', '<=', at)
          .orderBy('timestamp', 'desc')
          .limit(limit),
      ),
    );
  }

  pushesSince(repository: string, since: string): Promise<Push[]> {
    return this.guard('pushesSince', async () =>
      (
        await this.all<Push>(
          this.collection('push').where('repository', '==', repository).where('pushedAt', '>=', since),
        )
      ).sort(byPushedAt),
    );
  }

  shippingDeploysSince(repository: string, since: string): Promise<Deploy[]> {
    return this.guard('shippingDeploysSince', () =>
      this.all<Deploy>(
        this.collection('deploy')
          .where('repository', '==', repository)
          .where(SHIPS, '==', true)
          .where('finishedAt', '>=', since),
      ),
    );
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
