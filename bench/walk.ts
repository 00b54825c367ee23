/**
 * A first deploy after backfill, on Firestore (the emulator): 2,000 commits stored as
 * `devstats backfill github` stores them (with parents, no pushes), then the deploy of the newest;
 * its lead-time walk goes through all 2,000 shas. Counted where the client sends them: Firestore
 * requests by method, and the largest commit (its writes, and its size against the 10 MiB a
 * commit request may carry).
 */
import { randomUUID } from 'node:crypto';
import { Firestore } from '@google-cloud/firestore';
import type { Commit } from '../shared/events/model.ts';
import { commitId } from '../shared/events/model.ts';
import { parseSettings } from '../shared/events/settings.ts';
import { createLogger } from '../shared/log.ts';
import { createProcessor } from '../shared/pipeline/process.ts';
import { FirestoreStore } from '../shared/store/firestore.ts';
import { emulatorAvailable, startEmulator } from '../test/support/emulator.ts';

const SHAS = Number(process.env.BENCH_WALK_SHAS ?? 2000);
if (!emulatorAvailable('firestore')) {
  if (process.env.CI === 'true') throw new Error('CI=true but the firestore emulator is not installed');
  console.log('\n# first deploy after backfill: not measured (the Firestore emulator is not installed)');
} else {
  const emulator = await startEmulator('firestore');
  process.env.FIRESTORE_EMULATOR_HOST = emulator.host;
  const requests = new Map<string, number>();
  let largestCommit = 0;
  let largestCommitBytes = 0;
  /** Counted from the deploy on, not while the history is stored. */
  let counting = false;
  const proto = Firestore.prototype as unknown as Record<'request' | 'requestStream', (...args: unknown[]) => unknown>;
  for (const name of ['request', 'requestStream'] as const) {
    const send = proto[name];
    proto[name] = function (this: unknown, ...args: unknown[]) {
      const method = String(args[0]);
      if (!counting) return send.apply(this, args);
      requests.set(method, (requests.get(method) ?? 0) + 1);
      const body = args[1] as { writes?: unknown[]; structuredQuery?: unknown } | undefined;
      if (method === 'commit' && (body?.writes?.length ?? 0) > largestCommit) {
        largestCommit = body?.writes?.length ?? 0;
        largestCommitBytes = JSON.stringify(body?.writes ?? []).length;
      }
      return send.apply(this, args);
    };
  }
  const store = await FirestoreStore.connect(`devstats-walk-${randomUUID().slice(0, 8)}`);
  const repository = 'acme/billing';
  const sha = (i: number) => i.toString(16).padStart(40, '0');
  const start = Date.parse('2026-06-01T00:00:00Z');
  const commits: Commit[] = Array.from({ length: SHAS }, (_, i) => ({
    kind: 'commit',
    id: commitId(repository, sha(i + 1)),
    repository,
    branch: 'main',
    sha: sha(i + 1),
    authorLogin: `dev-${i % 7}`,
    authorName: `Dev ${i % 7}`,
    timestamp: new Date(start + i * 3_600_000).toISOString(),
    isBot: false,
    parents: i === 0 ? [] : [sha(i)],
  }));
  await store.putChanges(commits.map((change) => ({ change, onDefaultBranch: true })));
  const logger = createLogger(() => undefined);
  const handle = createProcessor({ store, settings: parseSettings({}), logger });
  counting = true;
  const finishedAt = new Date(start + SHAS * 3_600_000).toISOString();
  const deploy = {
    service: 'billing',
    environment: 'production',
    status: 'success',
    startedAt: finishedAt,
    finishedAt,
    id: 'walk-1',
    commitSha: sha(SHAS),
    repository,
  };
  const started = performance.now();
  await handle({
    data: Buffer.from(JSON.stringify(deploy)),
    attributes: { source: 'ci', eventType: 'deployment', deliveryId: deploy.id, receivedAt: finishedAt },
  });
  const ms = performance.now() - started;
  const total = [...requests.values()].reduce((sum, n) => sum + n, 0);
  await store.close();
  await emulator.stop();
  console.log(`\n# first deploy after backfill (${SHAS} commits walked, Firestore emulator)\n`);
  console.log('| figure | value | aim |\n|---|---|---|');
  console.log(
    `| Firestore requests | ${total}: ${[...requests].map(([method, n]) => `${n} ${method}`).join(', ')} | ≤ 70 |`,
  );
  console.log(`| time | ${(ms / 1000).toFixed(1)} s | |`);
  console.log(
    `| largest commit | ${largestCommit} writes, ${(largestCommitBytes / 1024).toFixed(0)} KiB as JSON | ≤ 10 MiB a request |`,
  );
}
