import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { deliveryOf } from '../../shared/bus/pubsub-event.ts';
import { memoryLogger } from '../../shared/log.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { normalizeCloudbuild } from '../../shared/sources/cloudbuild.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { cloudBuild, spinnakerPipelineEvent } from '../support/fixtures.ts';

const settings = parseSettings({
  cloudbuild: {
    deploys: [
      { trigger: 'payments-deploy', service: 'payments', environment: 'production' },
      { tag: 'release-search', service: 'search', environment: 'staging' },
    ],
  },
});
const context = { settings, receivedAt: '2026-11-22T10:05:00.000Z' };
const base = {
  kind: 'deploy',
  id: 'cloudbuild:8c2f4b1e-7d3a-4e5f-9a6b-0c1d2e3f4a5b',
  source: 'cloudbuild',
  service: 'network',
  environment: 'production',
  status: 'success',
  startedAt: '2026-11-22T10:00:00.000Z',
  finishedAt: '2026-11-22T10:04:30.500Z',
  commitSha: '5b1a2f3c4d5e6f708192a3b4c5d6e7f809112233',
  repository: 'acme/infra-live',
  actor: null,
  url: 'https://console.cloud.google.com/cloud-build/builds/8c2f4b1e-7d3a-4e5f-9a6b-0c1d2e3f4a5b?project=123',
  externalId: '8c2f4b1e-7d3a-4e5f-9a6b-0c1d2e3f4a5b',
};

describe('Cloud Build messages → canonical events', () => {
  const cases: Array<[string, Record<string, unknown>, Record<string, unknown> | null]> = [
    ['SUCCESS of a tagged build (devstats-service-network, devstats-env-prod)', cloudBuild('SUCCESS'), {}],
    ['FAILURE → failure', cloudBuild('FAILURE'), { status: 'failure' }],
    ['TIMEOUT → failure', cloudBuild('TIMEOUT'), { status: 'failure' }],
    ['INTERNAL_ERROR → failure', cloudBuild('INTERNAL_ERROR'), { status: 'failure' }],
    ['CANCELLED → cancelled', cloudBuild('CANCELLED'), { status: 'cancelled' }],
    ['EXPIRED → cancelled', cloudBuild('EXPIRED'), { status: 'cancelled' }],
    ['WORKING: not yet', cloudBuild('WORKING'), null],
    ['QUEUED: not yet', cloudBuild('QUEUED'), null],
    ['a build that is no deploy (no rule, no tags)', cloudBuild('SUCCESS', { tags: ['nightly'] }), null],
    [
      'a trigger-matched build',
      cloudBuild('SUCCESS', {
        tags: [],
        substitutions: { COMMIT_SHA: 'abc1234', REPO_NAME: 'payments', TRIGGER_NAME: 'payments-deploy' },
      }),
      { service: 'payments', commitSha: 'abc1234', repository: 'payments' },
    ],
    [
      'a tag-matched build',
      cloudBuild('SUCCESS', { tags: ['release-search'] }),
      { service: 'search', environment: 'staging' },
    ],
  ];
  for (const [name, build, overrides] of cases) {
    test(name, () => {
      assert.deepEqual(normalizeCloudbuild(build, 'x', context), overrides === null ? [] : [{ ...base, ...overrides }]);
    });
  }

  test('a build seen WORKING and then SUCCESS is one deploy', async () => {
    const store = new SqliteStore(':memory:');
    const processMessage = createProcessor({ store, settings, logger: memoryLogger() });
    const message = (status: string, id: string) =>
      deliveryOf(
        {
          data: Buffer.from(JSON.stringify(cloudBuild(status))),
          attributes: { buildId: base.externalId, status },
          messageId: id,
          publishTime: '2026-11-22T10:05:00.000Z',
        },
        'cloud-builds',
        settings.pubsubSources,
      );
    for (const m of [message('QUEUED', '1'), message('WORKING', '2'), message('SUCCESS', '3'), message('SUCCESS', '3')])
      await processMessage(m);
    assert.deepEqual(await store.events({ kind: 'deploy' }), [base]);
  });
});

describe('Spinnaker Echo events by Pub/Sub', () => {
  test('give the same events as by REST', async () => {
    const viaRest = new SqliteStore(':memory:');
    const viaPubsub = new SqliteStore(':memory:');
    const body = Buffer.from(JSON.stringify(spinnakerPipelineEvent('orca:pipeline:failed', 'TERMINAL')));
    await createProcessor({ store: viaRest, settings, logger: memoryLogger() })({
      data: body,
      attributes: {
        source: 'spinnaker',
        eventType: 'orca:pipeline:failed',
        deliveryId: 'x',
        receivedAt: '2026-11-22T10:05:00.000Z',
      },
    });
    await createProcessor({ store: viaPubsub, settings, logger: memoryLogger() })(
      deliveryOf(
        { data: body, attributes: {}, messageId: '77', publishTime: '2026-11-22T10:05:00.000Z' },
        'spinnaker-events',
        settings.pubsubSources,
      ),
    );
    const events = await viaRest.events({});
    assert.equal(events.length, 1);
    assert.deepEqual(await viaPubsub.events({}), events);
  });

  test('a topic named in pubsubSources is routed by topic; devstats-raw keeps its source attribute', () => {
    const message = {
      data: Buffer.from('{}'),
      attributes: { source: 'github', eventType: 'push', deliveryId: 'd' },
      messageId: '9',
    };
    assert.equal(deliveryOf(message, 'devstats-raw', settings.pubsubSources).attributes.source, 'github');
    assert.equal(deliveryOf(message, undefined, settings.pubsubSources).attributes.source, 'github');
    assert.deepEqual(
      deliveryOf(
        { ...message, attributes: { buildId: 'b', status: 'SUCCESS' } },
        'cloud-builds',
        settings.pubsubSources,
      ).attributes,
      {
        buildId: 'b',
        status: 'SUCCESS',
        source: 'cloudbuild',
        eventType: 'SUCCESS',
        deliveryId: '9',
      },
    );
  });
});
