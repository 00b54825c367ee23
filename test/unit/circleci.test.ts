import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseSettings } from '../../shared/events/settings.ts';
import { normalizeCircleci } from '../../shared/sources/circleci.ts';
import { circleciJobCompleted, circleciWorkflowCompleted } from '../support/fixtures.ts';

const settings = parseSettings({
  teams: { platform: { services: ['network'] } },
  circleci: {
    deploys: [{ project: 'infra-live', workflow: 'terraform-apply', service: 'network', environment: 'production' }],
    defaultEnvironment: 'production',
  },
});
const context = { settings, receivedAt: '2026-11-22T09:50:00.000Z' };

const base = {
  kind: 'deploy',
  id: 'circleci:fda08377-fe7e-46b1-8992-3a7aaecac9c3',
  source: 'circleci',
  service: 'payments-api',
  environment: 'production',
  status: 'success',
  startedAt: '2026-11-22T09:48:02.000Z',
  finishedAt: '2026-11-22T09:49:34.170Z',
  commitSha: '1dc6aa69429bff4806ad6afe58d3d8f57e25973e',
  repository: 'acme/payments-api',
  actor: null,
  url: 'https://app.circleci.com/pipelines/github/acme/payments-api/130/workflows/fda08377-fe7e-46b1-8992-3a7aaecac9c3',
  externalId: 'fda08377-fe7e-46b1-8992-3a7aaecac9c3',
};

describe('CircleCI workflow-completed → canonical events', () => {
  const cases: Array<[string, Record<string, unknown>, string, Record<string, unknown> | null]> = [
    [
      'a deploy workflow that succeeded',
      circleciWorkflowCompleted('deploy-production', 'success'),
      'workflow-completed',
      {},
    ],
    [
      'one that failed',
      circleciWorkflowCompleted('deploy-production', 'failed'),
      'workflow-completed',
      { status: 'failure' },
    ],
    [
      'one that errored',
      circleciWorkflowCompleted('deploy-production', 'error'),
      'workflow-completed',
      { status: 'failure' },
    ],
    [
      'one that was cancelled',
      circleciWorkflowCompleted('deploy-production', 'canceled'),
      'workflow-completed',
      { status: 'cancelled' },
    ],
    [
      'a deploy to staging, by the alias in its name',
      circleciWorkflowCompleted('deploy_stg', 'success'),
      'workflow-completed',
      { environment: 'staging' },
    ],
    [
      'a deploy workflow with no environment in its name: the default',
      circleciWorkflowCompleted('deploy', 'success'),
      'workflow-completed',
      {},
    ],
    [
      'a workflow that is not a deploy',
      circleciWorkflowCompleted('build-and-test', 'success'),
      'workflow-completed',
      null,
    ],
    [
      'an unauthorized workflow (not a finished deploy)',
      circleciWorkflowCompleted('deploy-production', 'unauthorized'),
      'workflow-completed',
      null,
    ],
    ['a job-completed event', circleciJobCompleted(), 'job-completed', null],
  ];
  for (const [name, body, eventType, overrides] of cases) {
    test(name, () => {
      assert.deepEqual(
        normalizeCircleci(body, eventType, context),
        overrides === null ? [] : [{ ...base, ...overrides }],
      );
    });
  }

  test('a rule-matched terraform-apply workflow is the infrastructure deploy of its service', () => {
    const body = circleciWorkflowCompleted('terraform-apply', 'success');
    Object.assign(body.project as object, { name: 'infra-live', slug: 'github/acme/infra-live' });
    Object.assign((body.pipeline as { vcs: object }).vcs, {
      target_repository_url: 'https://github.com/acme/infra-live.git',
    });
    assert.deepEqual(normalizeCircleci(body, 'workflow-completed', context), [
      { ...base, service: 'network', team: 'platform', repository: 'acme/infra-live' },
    ]);
  });

  test('the same terraform-apply name in another project is only a deploy by its name', () => {
    const [deploy] = normalizeCircleci(circleciWorkflowCompleted('terraform-apply'), 'workflow-completed', context);
    assert.equal(deploy?.kind === 'deploy' && deploy.service, 'payments-api');
  });
});
