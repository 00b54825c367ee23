import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { memoryLogger } from '../../shared/log.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { canonicalEnvironment, knownEnvironments, parseSettings } from '../../shared/events/settings.ts';
import { normalizeCircleci, workflowEnvironment } from '../../shared/sources/circleci.ts';
import { normalizeSpinnaker } from '../../shared/sources/spinnaker.ts';
import { workspaceTarget } from '../../shared/sources/terraform.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { circleciWorkflowCompleted, ciDeployment, spinnakerPipelineEvent } from '../support/fixtures.ts';

const settings = parseSettings({});
const context = { settings, receivedAt: '2026-11-22T12:00:00.000Z' };

describe('environments by whole tokens, explicit configuration first (issue 11)', () => {
  const cases: Array<[string, string]> = [
    ['prod', 'production'],
    ['PRD', 'production'],
    ['production', 'production'],
    ['prod-eu-1', 'production'],
    ['gke-prod-eu', 'production'],
    ['live', 'production'],
    ['pre-prod', 'pre-prod'],
    ['preprod', 'preprod'],
    ['non-prod', 'non-prod'],
    ['nonprod', 'nonprod'],
    ['prod-test', 'test'],
    ['live-test', 'test'],
    ['stg', 'staging'],
    ['staging-2', 'staging'],
    ['gke-stg-2', 'staging'],
    ['dev', 'development'],
    ['qa', 'test'],
    ['uat', 'uat'],
    ['pr-123', 'pr-123'],
    ['productivity', 'productivity'],
  ];
  for (const [name, expected] of cases) {
    test(`${name} → ${expected}`, () => {
      assert.equal(canonicalEnvironment(settings, name), expected);
    });
  }

  test('configured aliases and production environments come before the built-in rules', () => {
    const configured = parseSettings({
      productionEnvironments: ['production', 'prod-test'],
      environmentAliases: { staging: ['pre-prod'] },
    });
    assert.equal(canonicalEnvironment(configured, 'prod-test'), 'prod-test');
    assert.equal(canonicalEnvironment(configured, 'Pre-Prod'), 'staging');
  });

  test('Datadog knows the configured and built-in environments; any other is tagged env:other', () => {
    const known = knownEnvironments(
      parseSettings({ productionEnvironments: ['prod-eu'], environmentAliases: { qa: [] } }),
    );
    assert.deepEqual([...known].sort(), ['development', 'prod-eu', 'production', 'qa', 'staging', 'test']);
  });
});

describe('Terraform workspaces: <service>-<environment>, the environment a suffix of environment words', () => {
  const cases: Array<[string, { service: string; environment: string }]> = [
    ['billing-pre-prod', { service: 'billing', environment: 'pre-prod' }],
    ['checkout-production', { service: 'checkout', environment: 'production' }],
    ['checkout-api-prod', { service: 'checkout-api', environment: 'production' }],
    ['checkout-api-prod-eu-1', { service: 'checkout-api', environment: 'production' }],
    ['search-staging', { service: 'search', environment: 'staging' }],
    ['my-app-non-prod', { service: 'my-app', environment: 'non-prod' }],
    ['net-core', { service: 'net-core', environment: 'unknown' }],
  ];
  for (const [workspace, expected] of cases) {
    test(`${workspace} → ${expected.service}, ${expected.environment}`, () => {
      assert.deepEqual(workspaceTarget(settings, workspace), expected);
    });
  }
});

describe('CircleCI: the environment a deploy workflow names', () => {
  const cases: Array<[string, string]> = [
    ['build-test-deploy', 'production'],
    ['test-and-deploy', 'production'],
    ['deploy-staging', 'staging'],
    ['deploy-to-prod', 'production'],
    ['staging-deploy', 'staging'],
    ['deploy-test', 'test'],
    ['deploy-pre-prod', 'pre-prod'],
    ['terraform-apply', 'production'],
    ['deploy-api-prod-eu', 'production'],
  ];
  for (const [workflow, expected] of cases) {
    test(`${workflow} → ${expected}`, () => {
      assert.equal(workflowEnvironment(settings, workflow), expected);
    });
  }

  test('a build-test-deploy workflow is a production deploy (the default), not a test one', () => {
    const [deploy] = normalizeCircleci(
      circleciWorkflowCompleted('build-test-deploy', 'success'),
      'workflow-completed',
      context,
    );
    assert.equal(deploy?.kind === 'deploy' && deploy.environment, 'production');
  });
});

type Stage = { type: string; status?: string; context: Record<string, unknown>; startTime?: number; endTime?: number };
function pipeline(stages: Stage[], status = 'SUCCEEDED'): Record<string, unknown> {
  const event = spinnakerPipelineEvent('orca:pipeline:complete', status);
  (event.content as { execution: { stages: Stage[] } }).execution.stages = stages;
  return event;
}
const T = (minute: number) => Date.UTC(2025, 10, 22, 11, minute);

describe('Spinnaker: the environment from deploy stages only', () => {
  test('a bake stage naming a production account does not make a staging deploy production', () => {
    const deploys = normalizeSpinnaker(
      pipeline([
        { type: 'bakeManifest', status: 'SUCCEEDED', context: { account: 'prod-gke' } },
        { type: 'deployManifest', status: 'SUCCEEDED', context: { account: 'gke-stg' } },
      ]),
      '',
      context,
    );
    assert.deepEqual(
      deploys.map((d) => d.kind === 'deploy' && [d.id, d.environment]),
      [['spinnaker:01JD7Y3K3M5B9X2Q8W4T6R1N0P', 'staging']],
    );
  });

  test('a promotion pipeline (staging, then production) is the production deploy, timed by its stage', () => {
    const deploys = normalizeSpinnaker(
      pipeline([
        {
          type: 'deployManifest',
          status: 'SUCCEEDED',
          context: { account: 'gke-stg' },
          startTime: T(55),
          endTime: T(56),
        },
        { type: 'manualJudgment', status: 'SUCCEEDED', context: {} },
        {
          type: 'deploy',
          status: 'SUCCEEDED',
          context: { clusters: [{ account: 'gke-prod' }] },
          startTime: T(58),
          endTime: T(59),
        },
      ]),
      '',
      context,
    );
    assert.deepEqual(
      deploys.map((d) => d.kind === 'deploy' && [d.id, d.environment, d.status, d.startedAt, d.finishedAt]),
      [
        [
          'spinnaker:01JD7Y3K3M5B9X2Q8W4T6R1N0P',
          'production',
          'success',
          '2025-11-22T11:58:00.000Z',
          '2025-11-22T11:59:00.000Z',
        ],
      ],
    );
  });

  test('a pipeline that failed before production is a staging failure; its production stage never ran', () => {
    const deploys = normalizeSpinnaker(
      pipeline(
        [
          { type: 'deployManifest', status: 'TERMINAL', context: { account: 'gke-stg' } },
          { type: 'deployManifest', status: 'NOT_STARTED', context: { account: 'gke-prod' } },
        ],
        'TERMINAL',
      ),
      '',
      context,
    );
    assert.deepEqual(
      deploys.map((d) => d.kind === 'deploy' && [d.environment, d.status]),
      [['staging', 'failure']],
    );
  });

  test('one Deploy per production target, each with its own outcome', () => {
    const regions = parseSettings({
      productionEnvironments: ['production-eu', 'production-us'],
      spinnaker: { accounts: { 'gke-eu': 'production-eu', 'gke-us': 'production-us' } },
    });
    const deploys = normalizeSpinnaker(
      pipeline(
        [
          { type: 'createServerGroup', status: 'SUCCEEDED', context: { credentials: 'gke-eu' } },
          { type: 'createServerGroup', status: 'TERMINAL', context: { credentials: 'gke-us' } },
        ],
        'TERMINAL',
      ),
      '',
      { settings: regions, receivedAt: context.receivedAt },
    );
    assert.deepEqual(
      deploys.map((d) => d.kind === 'deploy' && [d.id, d.environment, d.status]),
      [
        ['spinnaker:01JD7Y3K3M5B9X2Q8W4T6R1N0P:production-eu', 'production-eu', 'success'],
        ['spinnaker:01JD7Y3K3M5B9X2Q8W4T6R1N0P:production-us', 'production-us', 'failure'],
      ],
    );
  });
});

describe('/deployments ids are scoped by service', () => {
  test('a build number reused by another service never replaces a deploy', async () => {
    const store = new SqliteStore(':memory:');
    const processMessage = createProcessor({ store, settings, logger: memoryLogger() });
    for (const service of ['billing', 'search']) {
      await processMessage({
        data: Buffer.from(JSON.stringify(ciDeployment({ service, id: 'build-42' }))),
        attributes: { source: 'ci', eventType: 'deployment', deliveryId: `ci:${service}:build-42` },
      });
    }
    assert.deepEqual(
      (await store.events({ kind: 'deploy' })).map((d) => d.id),
      ['ci:billing:build-42', 'ci:search:build-42'],
    );
    await store.close();
  });
});
