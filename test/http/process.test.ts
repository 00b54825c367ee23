import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { main as cli } from '../../shared/cli/main.ts';
import { memoryLogger } from '../../shared/log.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { StoreUnavailable, type Store } from '../../shared/store/store.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { ciDeployment, spinnakerPipelineEvent, cloudBuild } from '../support/fixtures.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'devstats-process-'));

/** A Pub/Sub push as Eventarc delivers it to the `process` target (binary-mode CloudEvent). */
function cloudEvent(body: unknown, attributes: Record<string, string>) {
  return {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'ce-id': '1234',
      'ce-specversion': '1.0',
      'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
      'ce-source': '//pubsub.googleapis.com/projects/p/topics/devstats-raw',
    },
    body: JSON.stringify({
      message: {
        data: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)).toString('base64'),
        attributes,
      },
      subscription: 'projects/p/subscriptions/devstats-raw-process',
    }),
  };
}

describe('the process target over HTTP (functions-framework, as Eventarc calls it)', () => {
  let server: Server;
  let url: string;
  before(async () => {
    process.env.DEVSTATS_DATA_DIR = dataDir;
    process.env.DEVSTATS_BUS = 'memory';
    await import('../../functions/process.ts');
    const { getTestServer } = await import('@google-cloud/functions-framework/testing');
    server = getTestServer('process');
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  after(() => {
    server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const attributes = {
    source: 'ci',
    deliveryId: 'ci:x',
    eventType: 'deployment',
    receivedAt: '2026-11-22T10:05:00.000Z',
  };

  test('a delivery is stored, and acknowledged with a 2xx', async () => {
    const response = await fetch(url, cloudEvent(ciDeployment(), attributes));
    assert.ok(response.status >= 200 && response.status < 300, String(response.status));
    const lines: string[] = [];
    await cli(['events', '--kind', 'deploy', '--json'], { DEVSTATS_DATA_DIR: dataDir }, (l) => lines.push(l));
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { id: string }).id),
      ['ci:billing:jenkins-billing-deploy-1842'],
    );
  });

  test('a Pub/Sub push (as infra/ subscribes it) to /projects/<p>/topics/cloud-builds is read as a Cloud Build message', async () => {
    const build = cloudBuild('SUCCESS', { id: 'push-build-1' });
    const response = await fetch(`${url}projects/acme/topics/cloud-builds`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        message: {
          data: Buffer.from(JSON.stringify(build)).toString('base64'),
          attributes: { buildId: 'push-build-1', status: 'SUCCESS' },
          messageId: '4242',
          publishTime: '2026-11-22T10:05:00.000Z',
        },
        subscription: 'projects/acme/subscriptions/devstats-process-cloud-builds',
      }),
    });
    assert.ok(response.status >= 200 && response.status < 300, String(response.status));
    const lines: string[] = [];
    await cli(['events', '--kind', 'deploy', '--json'], { DEVSTATS_DATA_DIR: dataDir }, (l) => lines.push(l));
    assert.ok(
      lines.some((l) => (JSON.parse(l) as { id: string }).id === 'cloudbuild:push-build-1'),
      lines.join('\n'),
    );
  });

  test('permanently bad input is acknowledged (2xx), never redelivered forever', async () => {
    for (const request of [
      cloudEvent('{"service": tru', attributes),
      cloudEvent({ service: 'x' }, attributes),
      cloudEvent(ciDeployment(), { ...attributes, source: 'gitlab' }),
    ]) {
      const response = await fetch(url, request);
      assert.ok(response.status >= 200 && response.status < 300, String(response.status));
    }
  });
});

describe('process outcomes', () => {
  const message = {
    data: Buffer.from(JSON.stringify(ciDeployment())),
    attributes: { source: 'ci', eventType: 'deployment' },
  };

  test('a store outage throws, so Pub/Sub redelivers', async () => {
    const broken = new Proxy(new SqliteStore(':memory:'), {
      get(target, property) {
        if (property === 'putDeploy') return () => Promise.reject(new StoreUnavailable('Firestore is down'));
        return Reflect.get(target, property) as unknown;
      },
    }) as Store;
    const processMessage = createProcessor({ store: broken, settings: parseSettings({}), logger: memoryLogger() });
    await assert.rejects(processMessage(message), StoreUnavailable);
  });

  test("a source's last delivery is written once a minute per instance, even for deliveries handled side by side", async () => {
    const store = new SqliteStore(':memory:');
    const writes: string[] = [];
    let failNext = false;
    const noting = new Proxy(store, {
      get(target, property, receiver) {
        if (property !== 'noteSourceSeen') return Reflect.get(target, property, receiver) as unknown;
        return async (source: string, at: string) => {
          writes.push(source);
          await new Promise((resolve) => setTimeout(resolve, 20)); // a round trip
          if (failNext) {
            failNext = false;
            throw new StoreUnavailable('Firestore noteSourceSeen failed: unavailable');
          }
          return target.noteSourceSeen(source, at);
        };
      },
    });
    let clock = Date.parse('2026-11-22T10:05:00.000Z');
    const processMessage = createProcessor({
      store: noting,
      settings: parseSettings({}),
      logger: memoryLogger(),
      now: () => new Date(clock),
    });
    const delivery = (source: string, i: number) => ({
      data: Buffer.from(JSON.stringify(ciDeployment({ id: `run-${source}-${i}` }))),
      attributes: { source, eventType: 'deployment', receivedAt: new Date(clock).toISOString() },
    });
    await Promise.all(Array.from({ length: 8 }, (_, i) => processMessage(delivery('ci', i))));
    assert.deepEqual(writes, ['ci'], 'eight at once: one write');
    // A failed write is tried again by the next delivery.
    clock += 61_000;
    failNext = true;
    await assert.rejects(processMessage(delivery('ci', 8)), StoreUnavailable);
    await processMessage(delivery('ci', 9));
    assert.deepEqual(writes, ['ci', 'ci', 'ci']);
    assert.deepEqual(await store.sourcesSeen(), { ci: '2026-11-22T10:06:01.000Z' });
  });

  test('bad input is a rejected outcome naming why, logged, and stores nothing', async () => {
    const store = new SqliteStore(':memory:');
    const logger = memoryLogger();
    const processMessage = createProcessor({ store, settings: parseSettings({}), logger });
    const outcome = await processMessage({
      ...message,
      data: Buffer.from(JSON.stringify({ ...ciDeployment(), status: 'ok' })),
    });
    assert.equal(outcome.outcome, 'rejected');
    assert.match(outcome.outcome === 'rejected' ? outcome.reason : '', /^status: /);
    assert.deepEqual(await store.events({}), []);
    assert.equal(logger.entries.at(-1)?.severity, 'WARNING');
  });

  test('a canonical event its schema refuses (an older ingest let it through) is permanent: rejected, never retried', async () => {
    const store = new SqliteStore(':memory:');
    const logger = memoryLogger();
    const processMessage = createProcessor({ store, settings: parseSettings({}), logger });
    const event = spinnakerPipelineEvent();
    (event.content as { execution: Record<string, unknown> }).execution.application = '';
    const outcome = await processMessage({
      data: Buffer.from(JSON.stringify(event)),
      attributes: { source: 'spinnaker', eventType: 'orca:pipeline:complete' },
    });
    assert.deepEqual(outcome, {
      outcome: 'rejected',
      reason: 'deploy.service: Too small: expected string to have >=1 characters',
    });
    // No payload fragment in the log: the reason names the field only.
    assert.ok(!JSON.stringify(logger.entries).includes('anonymous'));
  });

  test('log lines never quote the payload: invalid JSON and invalid times are named, not shown', async () => {
    const store = new SqliteStore(':memory:');
    const logger = memoryLogger();
    const processMessage = createProcessor({ store, settings: parseSettings({}), logger });
    await processMessage({
      data: Buffer.from('{"service": "secret-sauce", tru'),
      attributes: { source: 'ci', eventType: 'deployment' },
    });
    const event = spinnakerPipelineEvent();
    (event.content as { execution: Record<string, unknown> }).execution.endTime = 'secret-sauce-time';
    await processMessage({
      data: Buffer.from(JSON.stringify(event)),
      attributes: { source: 'spinnaker', eventType: 'orca:pipeline:complete' },
    });
    const text = JSON.stringify(logger.entries);
    assert.ok(!text.includes('secret-sauce'), text);
  });
});
