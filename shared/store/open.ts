import { join } from 'node:path';
import type { Config } from '../events/config.ts';
import type { Store } from './store.ts';

/** The store the configuration names; Firestore's client is imported only when it is the one. */
export async function openStore(config: Pick<Config, 'store' | 'projectId' | 'dataDir'>): Promise<Store> {
  if (config.store === 'firestore') {
    const { FirestoreStore } = await import('./firestore.ts');
    return FirestoreStore.connect(config.projectId);
  }
  const { SqliteStore } = await import('./sqlite.ts');
  return new SqliteStore(join(config.dataDir, 'devstats.sqlite'));
}
