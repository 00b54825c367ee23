import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Message, PubSub } from '@google-cloud/pubsub';
import { deliveryOf } from '../../shared/bus/pubsub-event.ts';
import { PubSubBus } from '../../shared/bus/pubsub.ts';
import { main as cli } from '../../shared/cli/main.ts';
import { memoryLogger } from '../../shared/log.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { type Emulator, skipUnlessEmulator, startEmulator } from '../support/emulator.ts';
import { ciDeployment, cloudBuild, spinnakerPipelineEvent } from '../support/fixtures.ts';
import { freePort } from '../support/ports.ts';

const skip = skipUnlessEmulator('pubsub');
const PROJECT = 'devstats-local';

async function until<T>(what: string, probe: () => Promise<T | undefined>, seconds = 40): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('Pub/Sub sources on the real emulator', { skip }, () => {
  let emulator: Emulator;
  let pubsub: PubSub;
  let client: PubSubBus;
  before(async () => {
    emulator = await startEmulator('pubsub');
    process.env.PUBSUB_EMULATOR_HOST = emulator.host;
    client = new PubSubBus({ projectId: PROJECT, publishTimeoutMs: 5000 });
    pubsub = await client.pubsub();
  });
  after(async () => {
    await client.close();
    await emulator.stop();
    delete process.env.PUBSUB_EMULATOR_HOST;
  });

  test('npm start next to the emulator: cloud-builds, spinnaker-events and ingest end up as deploys, once each', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'devstats-local-'));
    const port = await freePort();
    let output = '';
    const child: ChildProcess = spawn(
      process.execPath,
      [
        'node_modules/@google-cloud/functions-framework/build/src/main.js',
        '--target=ingest',
        '--source=functions/index.ts',
      ],
      {
        env: {
          ...process.env,
          PORT: String(port),
          GOOGLE_CLOUD_PROJECT: PROJECT,
          DEVSTATS_DATA_DIR: dataDir,
          DEPLOY_WEBHOOK_TOKEN: 'ci',
          DEVSTATS_STORE: 'sqlite',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    try {
      // The local run creates its topics and subscriptions.
      for (const name of [
        'devstats-process-cloud-builds',
        'devstats-process-spinnaker-events',
        'devstats-process-devstats-raw',
      ]) {
        await until(`subscription ${name}`, async () =>
          (await pubsub.subscription(name).exists())[0] ? true : undefined,
        );
      }
      const builds = pubsub.topic('cloud-builds');
      const attributes = (status: string) => ({ buildId: '8c2f4b1e-7d3a-4e5f-9a6b-0c1d2e3f4a5b', status });
      await builds.publishMessage({ json: cloudBuild('WORKING'), attributes: attributes('WORKING') });
      await builds.publishMessage({ json: cloudBuild('SUCCESS'), attributes: attributes('SUCCESS') });
      await builds.publishMessage({ json: cloudBuild('SUCCESS'), attributes: attributes('SUCCESS') }); // published twice
      await pubsub.topic('spinnaker-events').publishMessage({ json: spinnakerPipelineEvent() });
      const response = await fetch(`http://127.0.0.1:${port}/deployments`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: 'Bearer ci' },
        body: JSON.stringify(ciDeployment()),
      });
      assert.equal(response.status, 202);

      const deploys = await until('three deploys', async () => {
        const lines: string[] = [];
        await cli(['events', '--kind', 'deploy', '--json'], { DEVSTATS_DATA_DIR: dataDir }, (l) => lines.push(l));
        return lines.length >= 3
          ? lines.map((l) => JSON.parse(l) as { id: string; source: string; status: string })
          : undefined;
      });
      await new Promise((resolve) => setTimeout(resolve, 1000)); // a late duplicate would show now
      const lines: string[] = [];
      await cli(['events', '--kind', 'deploy', '--json'], { DEVSTATS_DATA_DIR: dataDir }, (l) => lines.push(l));
      assert.deepEqual(
        lines
          .map((l) => JSON.parse(l) as { id: string; source: string; status: string })
          .map((d) => [d.id, d.source, d.status])
          .sort(),
        [
          ['ci:billing:jenkins-billing-deploy-1842', 'ci', 'success'],
          ['cloudbuild:8c2f4b1e-7d3a-4e5f-9a6b-0c1d2e3f4a5b', 'cloudbuild', 'success'],
          ['spinnaker:01JD7Y3K3M5B9X2Q8W4T6R1N0P', 'spinnaker', 'success'],
        ],
      );
      assert.equal(deploys.length, 3);
    } catch (error) {
      throw new Error(`${String(error)}\n--- npm start output ---\n${output.slice(-3000)}`, { cause: error });
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('a message whose ack deadline passed is redelivered by the emulator, and stored once', async () => {
    const { Duration } = await import('@google-cloud/pubsub');
    const store = new SqliteStore(':memory:');
    const processMessage = createProcessor({ store, settings: parseSettings({}), logger: memoryLogger() });
    const [topic] = await pubsub.createTopic('cloud-builds-deadline');
    const [created] = await topic.createSubscription('devstats-deadline', { ackDeadlineSeconds: 10 });
    // The client stops extending the lease after a second: a delivery left unacknowledged then expires.
    const subscription = pubsub.subscription(created.name, {
      minAckDeadline: Duration.from({ seconds: 10 }),
      maxAckDeadline: Duration.from({ seconds: 10 }),
      maxExtensionTime: Duration.from({ seconds: 1 }),
    });
    const deliveries: number[] = [];
    subscription.on('message', (message: Message) => {
      deliveries.push(Date.now());
      const delivery = deliveryOf(
        {
          data: message.data,
          attributes: message.attributes,
          messageId: message.id,
          publishTime: message.publishTime.toISOString(),
        },
        'cloud-builds',
        { 'cloud-builds': 'cloudbuild' },
      );
      void processMessage(delivery).then(() => {
        // The first delivery is stored, then lost before its ack (a crashed instance).
        if (deliveries.length > 1) message.ack();
      });
    });
    try {
      await topic.publishMessage({ json: cloudBuild('SUCCESS'), attributes: { status: 'SUCCESS' } });
      await until(
        'the redelivery after the ack deadline',
        () => Promise.resolve(deliveries.length >= 2 ? true : undefined),
        60,
      );
      assert.ok(deliveries[1]! - deliveries[0]! >= 9000, `redelivered after ${deliveries[1]! - deliveries[0]!} ms`);
      assert.deepEqual(
        (await store.events({ kind: 'deploy' })).map((d) => d.id),
        ['cloudbuild:8c2f4b1e-7d3a-4e5f-9a6b-0c1d2e3f4a5b'],
      );
    } finally {
      await subscription.close();
      await store.close();
    }
  });

  test('a message nacked after it was stored is redelivered by the emulator, and stored once', async () => {
    const store = new SqliteStore(':memory:');
    const settings = parseSettings({});
    const processMessage = createProcessor({ store, settings, logger: memoryLogger() });
    const seen = new Map<string, number>();
    const bus = new PubSubBus({ projectId: PROJECT, publishTimeoutMs: 5000 });
    const subscription = await bus.subscribe(
      'cloud-builds-redelivery',
      async (message) => {
        const attempt = (seen.get(message.id) ?? 0) + 1;
        seen.set(message.id, attempt);
        await processMessage(
          deliveryOf({ ...message, messageId: message.id }, 'cloud-builds', {
            'cloud-builds-redelivery': 'cloudbuild',
            'cloud-builds': 'cloudbuild',
          }),
        );
        if (attempt === 1) throw new Error('lost before the ack'); // stored, but never acknowledged
      },
      { subscription: 'devstats-redelivery' },
    );
    try {
      await pubsub
        .topic('cloud-builds-redelivery')
        .publishMessage({ json: cloudBuild('SUCCESS'), attributes: { status: 'SUCCESS' } });
      await until(
        'the redelivery',
        () => Promise.resolve([...seen.values()].some((n) => n >= 2) ? true : undefined),
        30,
      );
      assert.deepEqual(
        (await store.events({ kind: 'deploy' })).map((d) => d.id),
        ['cloudbuild:8c2f4b1e-7d3a-4e5f-9a6b-0c1d2e3f4a5b'],
      );
    } finally {
      await subscription.close();
      await bus.close();
      await store.close();
    }
  });
});
