import { join } from 'node:path';
import type { Store } from './store.ts';

/** The store the configuration names; Firestore's client is imported only when it is the one. */
/** The part of the configuration that chooses and places the store. */
export interface StoreChoice {
  store: 'firestore' | 'sqlite';
  projectId: string | undefined;
  /** Firestore over REST (`DEVSTATS_FIRESTORE_REST=1`), not gRPC: see FirestoreStore.connect. */
  firestoreRest: boolean;
  dataDir: string;
}

export async function openStore(config: StoreChoice): Promise<Store> {
  if (config.store === 'firestore') {
    const { FirestoreStore } = await import('./firestore.ts');
    return FirestoreStore.connect(config.projectId, { preferRest: config.firestoreRest });
  }
  const { SqliteStore } = await import('./sqlite.ts');
  return new SqliteStore(join(config.dataDir, 'devstats.sqlite'));
}
