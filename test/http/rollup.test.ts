import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

const dataDir = mkdtempSync(join(tmpdir(), 'devstats-rollup-'));

function pubsubEvent(data: unknown, attributes: Record<string, string>, topic: string) {
  return {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'ce-id': String(Math.random()),
      'ce-specversion': '1.0',
      'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
      'ce-source': `//pubsub.googleapis.com/projects/p/topics/${topic}`,
    },
    body: JSON.stringify({ message: { data: Buffer.from(JSON.stringify(data)).toString('base64'), attributes } }),
  };
}

async function serve(target: string): Promise<{ server: Server; url: string }> {
  const { getTestServer } = await import('@google-cloud/functions-framework/testing');
  const server = getTestServer(target);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

const lines = (file: string) =>
  readFileSync(join(dataDir, 'datadog', file), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('without DD_API_KEY: process and rollup write what Datadog would get to files', () => {
  let processTarget: { server: Server; url: string };
  let rollupTarget: { server: Server; url: string };
  before(async () => {
    process.env.DEVSTATS_DATA_DIR = dataDir;
    process.env.DEVSTATS_BUS = 'memory';
    delete process.env.DD_API_KEY;
    await import('../../functions/process.ts');
    await import('../../functions/rollup.ts');
    processTarget = await serve('process');
    rollupTarget = await serve('rollup');
  });
  after(() => {
    processTarget.server.close();
    rollupTarget.server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('a deploy through the process target, then a tick through the rollup target', async () => {
    const finishedAt = new Date(Date.now() - 60_000).toISOString();
    const deploy = {
      service: 'billing',
      environment: 'production',
      status: 'success',
      startedAt: new Date(Date.now() - 120_000).toISOString(),
      finishedAt,
      id: 'run-7',
    };
    const processed = await fetch(
      processTarget.url,
      pubsubEvent(
        deploy,
        { source: 'ci', eventType: 'deployment', deliveryId: 'ci:billing:run-7', receivedAt: new Date().toISOString() },
        'devstats-raw',
      ),
    );
    assert.ok(processed.ok, String(processed.status));
    // Exported by process itself, before any rollup.
    assert.deepEqual(
      lines('dora_deployment.jsonl').map((d) => d.id),
      ['ci:billing:run-7'],
    );
    const ticked = await fetch(rollupTarget.url, pubsubEvent({}, {}, 'devstats-tick'));
    assert.ok(ticked.ok, String(ticked.status));

    assert.deepEqual(
      lines('dora_deployment.jsonl').map((d) => [d.id, d.service, d.env, d.finishedAt]),
      [['ci:billing:run-7', 'billing', 'production', finishedAt]],
    );
    const series = lines('series.jsonl').flatMap(
      (b) => b.series as Array<{ metric: string; type: string; value: number; tags: string[] }>,
    );
    // Sent by process, and again by rollup (it resends the last hour's buckets): the same count.
    assert.deepEqual(
      series
        .filter((p) => p.metric === 'devstats.deploys')
        .map((p) => [p.type, p.value, p.tags.includes('service:billing')]),
      [
        ['count', 1, true],
        ['count', 1, true],
      ],
    );
    // Today's gauge (and, in the hour after midnight, yesterday's closing one).
    const active = series.filter((p) => p.metric === 'devstats.developers.active');
    assert.ok(active.length >= 1 && active.length <= 2);
    assert.deepEqual(
      new Set(active.map((p) => JSON.stringify([p.type, p.value, p.tags]))),
      new Set([JSON.stringify(['gauge', 0, ['team:all']])]),
    );
    // No developers: no deploys-per-developer figure rather than an infinity.
    assert.deepEqual(
      series.filter((p) => p.metric === 'devstats.deploys_per_developer_per_day'),
      [],
    );
    assert.equal(lines('events.jsonl').length, 1);
  });
});
