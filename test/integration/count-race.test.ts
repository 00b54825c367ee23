import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { Deploy } from '../../shared/events/model.ts';
import { Exporter } from '../../shared/export/exporter.ts';
import { memoryLogger } from '../../shared/log.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { FirestoreStore } from '../../shared/store/firestore.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import type { Store } from '../../shared/store/store.ts';
import { FakeDatadog } from '../support/datadog-server.ts';
import { skipUnlessEmulator, useFirestoreEmulator } from '../support/emulator.ts';

/*
 * Two exporters (two instances of process) race on one store: A reads the count of a minute
 * bucket while it holds one deploy, and its answer is slow; meanwhile a second deploy lands and B
 * sends the count 2. A's stale 1 arrives after B's 2, and Datadog keeps the last value it got per
 * (metric, tags, second). The recount after each send must leave 2 as the last word.
 */
const NOW = new Date('2026-11-22T12:00:00.000Z');
const settings = parseSettings({});

function deploy(id: string, finishedAt: string): Deploy {
  return {
    kind: 'deploy',
    id,
    source: 'ci',
    service: 'billing',
    environment: 'production',
    status: 'success',
    startedAt: '2026-11-22T11:50:00.000Z',
    finishedAt,
    actor: null,
    externalId: id,
  };
}

/** The store as exporter A sees it: its first bucket read answers what was there, once `late` resolves. */
function slowFirstRead(store: Store, late: Promise<unknown>, read: () => void): Store {
  let slowed = false;
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'deploysBetween') {
        return async (...args: Parameters<Store['deploysBetween']>) => {
          const answer = await target.deploysBetween(...args);
          if (!slowed) {
            slowed = true;
            read();
            await late;
          }
          return answer;
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function race(name: string, open: () => Promise<Store>, options: { skip?: string } = {}): void {
  test(`${name}: a stale recount sent later never overwrites the newer one`, { skip: options.skip }, async () => {
    const dd = await new FakeDatadog().start();
    const store = await open();
    try {
      const sink = () => dd.sink(memoryLogger());
      const logger = memoryLogger();
      const answers: Array<(value: unknown) => void> = [];
      const late = new Promise((resolve) => answers.push(resolve));
      let read = () => undefined as unknown;
      const readDone = new Promise(
        (resolve) =>
          (read = () => {
            resolve(undefined);
          }),
      );
      const a = new Exporter({
        store: slowFirstRead(store, late, () => read()),
        sink: sink(),
        settings,
        logger,
        now: () => NOW,
      });
      const b = new Exporter({ store, sink: sink(), settings, logger, now: () => NOW });
      const first = deploy('ci:billing:1', '2026-11-22T11:55:10.000Z');
      const second = deploy('ci:billing:2', '2026-11-22T11:55:40.000Z');
      await store.putDeploy(first, { shipsChanges: false });
      const slow = a.deploy(first); // reads 1, answers late
      await readDone;
      await store.putDeploy(second, { shipsChanges: false });
      await b.deploy(second); // reads 2, sends 2
      for (const answer of answers) answer(undefined);
      await slow; // sends its stale 1 after that, then counts again
      const kept = new Map<string, number>();
      const sent: number[] = [];
      for (const body of dd.bodies('/api/v1/series') as Array<{
        series: Array<{ metric: string; tags: string[]; points: Array<[number, number]> }>;
      }>)
        for (const s of body.series.filter((x) => x.metric === 'devstats.deploys'))
          for (const [timestamp, value] of s.points) {
            kept.set(`${s.tags.sort().join(',')}@${timestamp}`, value);
            sent.push(value);
          }
      assert.deepEqual(sent.slice(0, 2), [2, 1], 'the race happened: the stale count arrived last');
      assert.deepEqual([...kept.values()], [2], 'what Datadog keeps');
    } finally {
      await store.close();
      await dd.stop();
    }
  });
}

describe('devstats.deploys across concurrent exporters (issue 11)', () => {
  race('SQLite', () => Promise.resolve(new SqliteStore(':memory:')));

  describe('Firestore emulator', { skip: skipUnlessEmulator('firestore') }, () => {
    useFirestoreEmulator();
    race('Firestore', () => FirestoreStore.connect(`devstats-${randomUUID().slice(0, 8)}`));
  });
});
