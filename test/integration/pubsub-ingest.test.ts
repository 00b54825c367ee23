import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Message, PubSub, Subscription } from '@google-cloud/pubsub';
import { PubSubBus } from '../../shared/bus/pubsub.ts';
import { memoryLogger } from '../../shared/log.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { ciDeployment, githubPush } from '../support/fixtures.ts';
import { type Emulator, skipUnlessEmulator, startEmulator } from '../support/emulator.ts';
import { type RunningServer, startIngestServer } from '../support/ingest-server.ts';
import { sign } from '../support/signing.ts';

const skip = skipUnlessEmulator('pubsub');
const PROJECT = 'devstats-test';

describe('ingest publishes to the real Pub/Sub emulator', { skip }, () => {
  let emulator: Emulator;
  let bus: PubSubBus;
  let pubsub: PubSub;
  let server: RunningServer;
  let subscription: Subscription;
  const received: Message[] = [];

  before(async () => {
    emulator = await startEmulator('pubsub');
    process.env.PUBSUB_EMULATOR_HOST = emulator.host;
    bus = new PubSubBus({ projectId: PROJECT, publishTimeoutMs: 3000 });
    pubsub = await bus.pubsub();
    const [topic] = await pubsub.createTopic('devstats-raw');
    [subscription] = await topic.createSubscription('devstats-raw-test');
    subscription.on('message', (message: Message) => {
      received.push(message);
      message.ack();
    });
    server = await startIngestServer({
      config: {
        maxBodyBytes: 26_214_400,
        secrets: {
          github: ['gh'],
          spinnaker: [],
          terraform: [],
          circleci: [],
          ci: ['ci'],
          pagerduty: [],
          opsgenie: [],
          datadog: [],
        },
        insecureDev: false,
        rawTopic: 'devstats-raw',
        projectId: PROJECT,
      },
      bus,
      logger: memoryLogger(),
    });
  });

  after(async () => {
    await subscription.close();
    await server.close();
    await bus.close();
    await emulator.stop();
    delete process.env.PUBSUB_EMULATOR_HOST;
  });

  async function waitFor(count: number): Promise<void> {
    const deadline = Date.now() + 15_000;
    while (received.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }

  test('messages arrive on devstats-raw with their attributes and the exact body bytes', async () => {
    const push = JSON.stringify(githubPush(300_000));
    const pushResponse = await fetch(`${server.url}/github`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'push',
        'x-github-delivery': 'emulator-delivery-1',
        'x-hub-signature-256': sign.github(push, 'gh'),
      },
      body: push,
    });
    assert.equal(pushResponse.status, 202);
    const deploy = JSON.stringify(ciDeployment());
    const deployResponse = await fetch(`${server.url}/deployments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: sign.bearer('ci') },
      body: deploy,
    });
    assert.equal(deployResponse.status, 202);

    await waitFor(2);
    const byDelivery = new Map(received.map((m) => [m.attributes.deliveryId, m]));
    const pushMessage = byDelivery.get('emulator-delivery-1');
    assert.ok(pushMessage, 'push message received');
    assert.ok(pushMessage.data.equals(Buffer.from(push)));
    assert.equal(pushMessage.attributes.source, 'github');
    assert.equal(pushMessage.attributes.eventType, 'push');
    assert.match(pushMessage.attributes.receivedAt ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const deployMessage = byDelivery.get('ci:billing:jenkins-billing-deploy-1842');
    assert.ok(deployMessage, 'deploy message received');
    assert.ok(deployMessage.data.equals(Buffer.from(deploy)));
    assert.deepEqual(
      { source: deployMessage.attributes.source, eventType: deployMessage.attributes.eventType },
      { source: 'ci', eventType: 'deployment' },
    );
  });

  test("a 24 MiB push (over Pub/Sub's 10 MB) goes gzipped, and process stores every commit of it", async () => {
    const payload = githubPush(24 * 1024 * 1024);
    const push = JSON.stringify(payload);
    assert.ok(Buffer.byteLength(push) > 24 * 1024 * 1024 && Buffer.byteLength(push) < 26_214_400);
    const response = await fetch(`${server.url}/github`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'push',
        'x-github-delivery': 'emulator-delivery-big',
        'x-hub-signature-256': sign.github(push, 'gh'),
      },
      body: push,
    });
    assert.equal(response.status, 202, await response.text());
    const deadline = Date.now() + 30_000;
    while (!received.some((m) => m.attributes.deliveryId === 'emulator-delivery-big') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const message = received.find((m) => m.attributes.deliveryId === 'emulator-delivery-big');
    assert.ok(message, 'the big push arrived');
    assert.equal(message.attributes.contentEncoding, 'gzip');
    assert.ok(message.data.length < 10_000_000, `${message.data.length} bytes on the topic`);
    const store = new SqliteStore(':memory:');
    const outcome = await createProcessor({ store, settings: parseSettings({}), logger: memoryLogger() })({
      data: message.data,
      attributes: message.attributes,
    });
    assert.equal(outcome.outcome, 'stored');
    const commits = (payload.commits as unknown[]).length;
    assert.equal((await store.events({ kind: 'commit' })).length, commits);
    await store.close();
  });

  test('a message published while its subscription is being created is delivered (npm start takes deliveries at once)', async () => {
    // The topic exists; the subscription does not yet: Pub/Sub drops what is published before it.
    await pubsub.createTopic('devstats-early');
    const got: string[] = [];
    const subscribed = bus.subscribe(
      'devstats-early',
      (message) => {
        got.push(message.data.toString());
        return Promise.resolve();
      },
      { subscription: 'devstats-early-process', onError: (error) => assert.fail(String(error)) },
    );
    await bus.publish('devstats-early', { data: Buffer.from('first delivery'), attributes: {} });
    const deadline = Date.now() + 10_000;
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(got, ['first delivery']);
    await (await subscribed).close();
  });

  test('with the emulator stopped, ingest answers 503 with Retry-After', async () => {
    await subscription.close();
    await emulator.stop();
    const started = Date.now();
    const response = await fetch(`${server.url}/deployments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: sign.bearer('ci') },
      body: JSON.stringify(ciDeployment({ id: 'during-outage' })),
    });
    assert.equal(response.status, 503);
    assert.equal(response.headers.get('retry-after'), '30');
    assert.equal(((await response.json()) as { error: string }).error, 'unavailable');
    assert.ok(Date.now() - started < 9000, 'answered before GitHub gives up (10 s)');
  });
});
