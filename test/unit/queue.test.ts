import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Message, Subscription } from '@google-cloud/pubsub';
import { PubSubBus } from '../../shared/bus/pubsub.ts';
import { SqliteQueueBus } from '../../shared/bus/sqlite-queue.ts';
import { main as cli } from '../../shared/cli/main.ts';
import { memoryLogger } from '../../shared/log.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { originTopic, replayPubSub } from '../../shared/cli/dead-letters.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { type Emulator, skipUnlessEmulator, startEmulator } from '../support/emulator.ts';
import { ciDeployment } from '../support/fixtures.ts';

const message = (id: string) => ({
  data: Buffer.from(JSON.stringify(ciDeployment({ id }))),
  attributes: {
    source: 'ci',
    eventType: 'deployment',
    deliveryId: `ci:billing:${id}`,
    receivedAt: new Date().toISOString(),
  },
});

describe('the embedded queue: on disk before the 202, delivered again after a crash (issue 12)', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'devstats-queue-'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('a message published and never handled (the process died) is delivered by the next process', async () => {
    const path = join(dir, 'crash.sqlite');
    const first = new SqliteQueueBus({ path, logger: memoryLogger() });
    await first.publish('devstats-raw', message('a'));
    await first.close(); // nobody consumed it: as after kill -9 before process ran
    const second = new SqliteQueueBus({ path, logger: memoryLogger() });
    const seen: string[] = [];
    second.subscribe('devstats-raw', (d) => {
      seen.push(d.attributes.deliveryId ?? '');
      return Promise.resolve();
    });
    await second.drain();
    assert.deepEqual(seen, ['ci:billing:a']);
    await second.close();
  });

  test('a message whose handler never finished (lease lapsed) is delivered again', async () => {
    const path = join(dir, 'lease.sqlite');
    const first = new SqliteQueueBus({ path, logger: memoryLogger(), ackDeadlineMs: 50 });
    let started = 0;
    first.subscribe('devstats-raw', () => {
      started++;
      return new Promise(() => undefined); // hangs, as a process killed mid-delivery
    });
    await first.publish('devstats-raw', message('b'));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(started, 1);
    const second = new SqliteQueueBus({ path, logger: memoryLogger(), ackDeadlineMs: 50 });
    const seen: string[] = [];
    second.subscribe('devstats-raw', (d) => {
      seen.push(d.attributes.deliveryId ?? '');
      return Promise.resolve();
    });
    await second.drain();
    assert.deepEqual(seen, ['ci:billing:b']);
    await second.close();
  });

  test('a consumer failing on a full disk (SQLITE_FULL) past the attempts: never dead-lettered, delivered once there is room (issue 25)', async () => {
    const queue = new SqliteQueueBus({ path: join(dir, 'full.sqlite'), logger: memoryLogger(), maxAttempts: 2 });
    const attempts: number[] = [];
    let handled = false;
    queue.subscribe('devstats-raw', (d) => {
      attempts.push(d.attempt);
      if (attempts.length <= 3)
        return Promise.reject(Object.assign(new Error('database or disk is full'), { errcode: 13 }));
      handled = true;
      return Promise.resolve();
    });
    await queue.publish('devstats-raw', message('full'));
    const deadline = Date.now() + 10_000;
    while (!handled && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(attempts, [1, 2, 3, 4], 'past maxAttempts, still delivered');
    assert.deepEqual(queue.deadLetters(), []);
    await queue.close();
  });

  test('a consumer that keeps failing: retried with backoff, then dead-lettered on disk; replay stores it once', async () => {
    const path = join(dir, 'queue.sqlite');
    const queue = new SqliteQueueBus({ path, logger: memoryLogger(), maxAttempts: 3, retryDelayMs: 5 });
    let attempts = 0;
    queue.subscribe('devstats-raw', () => {
      attempts++;
      return Promise.reject(new Error('Firestore is down'));
    });
    await queue.publish('devstats-raw', message('c'));
    await queue.drain();
    assert.equal(attempts, 3);
    await queue.close();

    // What the dead letter carries, and replaying it from the command line.
    const env = { DEVSTATS_DATA_DIR: dir };
    const lines: string[] = [];
    assert.equal(await cli(['replay', '--dry-run'], env, (l) => lines.push(l)), 0);
    assert.match(lines[0] ?? '', /^would send ci +ci:billing:c .*3 attempts: Error: Firestore is down/);
    lines.length = 0;
    assert.equal(await cli(['replay', '--source', 'github'], env, (l) => lines.push(l)), 0);
    assert.match(lines.at(-1) ?? '', /0 of 1 dead letters sent again/);
    lines.length = 0;
    assert.equal(await cli(['replay'], env, (l) => lines.push(l)), 0);
    assert.match(lines.join('\n'), /1 of 1 dead letters sent again/);

    const again = new SqliteQueueBus({ path, logger: memoryLogger() });
    assert.deepEqual(again.deadLetters(), []);
    const store = new SqliteStore(':memory:');
    const processMessage = createProcessor({ store, settings: parseSettings({}), logger: memoryLogger() });
    again.subscribe('devstats-raw', async (d) => {
      await processMessage(d);
    });
    await again.drain();
    await processMessage(message('c')); // and once more: deduped as any redelivery
    assert.deepEqual(
      (await store.events({ kind: 'deploy' })).map((d) => d.id),
      ['ci:billing:c'],
    );
    await again.close();
    await store.close();
  });
});

describe('devstats replay against the Pub/Sub emulator', { skip: skipUnlessEmulator('pubsub') }, () => {
  let emulator: Emulator;
  let bus: PubSubBus;
  before(async () => {
    emulator = await startEmulator('pubsub');
    process.env.PUBSUB_EMULATOR_HOST = emulator.host;
    bus = new PubSubBus({ projectId: `replay-${randomUUID().slice(0, 6)}`, publishTimeoutMs: 3000 });
  });
  after(async () => {
    await bus.close();
    await emulator.stop();
    delete process.env.PUBSUB_EMULATOR_HOST;
  });

  test('the dead-letter subscription is read; each letter goes back to the topic it came from, and is acknowledged', async () => {
    const pubsub = await bus.pubsub();
    const [dead] = await pubsub.createTopic('devstats-dead-letter');
    await dead.createSubscription('devstats-dead-letter-inspect');
    const received: Message[] = [];
    const listening: Subscription[] = [];
    for (const name of ['devstats-raw', 'cloud-builds']) {
      const [topic] = await pubsub.createTopic(name);
      const [subscription] = await topic.createSubscription(`${name}-test`);
      listening.push(subscription);
      subscription.on('message', (m: Message) => {
        received.push(m);
        m.ack();
      });
    }
    // As Pub/Sub dead-letters them: the source subscription named in an attribute.
    await dead.publishMessage({
      data: message('d').data,
      attributes: {
        ...message('d').attributes,
        CloudPubSubDeadLetterSourceSubscription: 'devstats-process-devstats-raw',
        CloudPubSubDeadLetterSourceDeliveryCount: '5',
      },
    });
    await dead.publishMessage({
      data: Buffer.from('{"id":"b-1","status":"SUCCESS"}'),
      attributes: {
        status: 'SUCCESS',
        CloudPubSubDeadLetterSourceSubscription: 'projects/p/subscriptions/devstats-process-cloud-builds',
      },
    });
    const options = {
      subscription: 'devstats-dead-letter-inspect',
      rawTopic: 'devstats-raw',
      pubsubSources: parseSettings({}).pubsubSources,
      waitMs: 1500,
    };
    const dry = await replayPubSub(bus, options, {}, true);
    assert.deepEqual(dry.lines.map((l) => [l.topic, l.source]).sort(), [
      ['cloud-builds', 'cloudbuild'],
      ['devstats-raw', 'ci'],
    ]);
    assert.equal(received.length, 0, 'a dry run sends nothing');
    const done = await replayPubSub(bus, { ...options, waitMs: 3000 }, {}, false);
    assert.equal(done.replayed, 2);
    const deadline = Date.now() + 10_000;
    while (received.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(
      received
        .map((m) => [
          m.attributes.deliveryId ?? m.attributes.status,
          Object.keys(m.attributes).some((k) => k.startsWith('CloudPubSub')),
        ])
        .sort(),
      [
        ['SUCCESS', false],
        ['ci:billing:d', false],
      ],
    );
    const after = await replayPubSub(bus, { ...options, waitMs: 1000 }, {}, true);
    assert.equal(after.found, 0, 'acknowledged: gone from the dead letters');
    await Promise.all(listening.map((l) => l.close()));
  });

  test('a letter without its source subscription goes to devstats-raw', () => {
    assert.equal(originTopic({}, 'devstats-raw'), 'devstats-raw');
    assert.equal(
      originTopic({ CloudPubSubDeadLetterSourceSubscription: 'devstats-process-spinnaker-events' }, 'devstats-raw'),
      'spinnaker-events',
    );
  });
});
