import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { WebhookSource } from '../../shared/sources/registry.ts';
import type { IngestDeps } from '../../shared/pipeline/ingest.ts';
import { memoryLogger } from '../../shared/log.ts';
import {
  ciDeployment,
  circleciJobCompleted,
  circleciWorkflowCompleted,
  datadogMonitor,
  githubIssue,
  opsgenieAlert,
  pagerdutyIncident,
  githubExamples,
  githubMergedPullRequest,
  githubPush,
  spinnakerPipelineEvent,
  terraformAssessment,
  terraformNotification,
} from '../support/fixtures.ts';
import { type RunningServer, startIngestServer } from '../support/ingest-server.ts';
import { RecordingBus } from '../support/recording-bus.ts';
import { everySource, sign } from '../support/signing.ts';

const GITHUB_SECRET = 'gh-secret-2026';
const GITHUB_OLD_SECRET = 'gh-secret-2025';
const SPINNAKER_TOKEN = 'spin-token';
const TERRAFORM_TOKEN = 'tf-token';
const CI_TOKEN = 'ci-token';
const CIRCLECI_SECRET = 'circle-secret';
const PAGERDUTY_SECRET = 'pd-secret';
const OPSGENIE_TOKEN = 'og-token';
const DATADOG_TOKEN = 'dd-token';
const RECEIVED_AT = new Date('2026-11-22T10:05:00.123Z');

function depsWith(bus: RecordingBus, overrides: Partial<IngestDeps['config']> = {}): IngestDeps {
  const secrets: Record<WebhookSource, string[]> = {
    github: [GITHUB_OLD_SECRET, GITHUB_SECRET],
    spinnaker: [SPINNAKER_TOKEN],
    terraform: [TERRAFORM_TOKEN],
    circleci: [CIRCLECI_SECRET],
    ci: [CI_TOKEN],
    pagerduty: [PAGERDUTY_SECRET],
    opsgenie: [OPSGENIE_TOKEN],
    datadog: [DATADOG_TOKEN],
  };
  return {
    config: {
      maxBodyBytes: 26_214_400,
      secrets,
      insecureDev: false,
      rawTopic: 'devstats-raw',
      projectId: 'test-project',
      ...overrides,
    },
    bus,
    logger: memoryLogger(),
    now: () => RECEIVED_AT,
  };
}

interface Sent {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

async function send(
  server: RunningServer,
  path: string,
  init: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<Sent> {
  const response = await fetch(server.url + path, {
    method: init.method ?? 'POST',
    headers: init.headers,
    body: init.body,
  });
  const text = await response.text();
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/, `${path} answered ${text}`);
  return { status: response.status, headers: response.headers, body: JSON.parse(text) as Record<string, unknown> };
}

const json = { 'content-type': 'application/json' };

function github(
  event: string,
  payload: unknown,
  secret = GITHUB_SECRET,
  delivery = 'a7d3c1e0-0000-4000-8000-000000000001',
) {
  const body = typeof payload === 'string' ? payload : JSON.stringify(payload);
  return {
    body,
    headers: {
      ...json,
      'x-github-event': event,
      'x-github-delivery': delivery,
      'x-hub-signature-256': sign.github(body, secret),
    },
  };
}
const spinnaker = (payload: unknown, authorization = sign.bearer(SPINNAKER_TOKEN)) => ({
  body: JSON.stringify(payload),
  headers: { ...json, authorization },
});
function terraform(payload: unknown, token = TERRAFORM_TOKEN) {
  const body = JSON.stringify(payload);
  return { body, headers: { ...json, 'x-tfe-notification-signature': sign.terraform(body, token) } };
}
function circleci(payload: unknown, signature?: (body: string) => string) {
  const body = JSON.stringify(payload);
  const header = signature ? signature(body) : `v1=${sign.github(body, CIRCLECI_SECRET).slice('sha256='.length)}`;
  return { body, headers: { ...json, 'circleci-event-type': 'workflow-completed', 'circleci-signature': header } };
}
const v1 = (body: string, secret: string) => `v1=${sign.github(body, secret).slice('sha256='.length)}`;
function pagerduty(payload: unknown, signature?: (body: string) => string) {
  const body = JSON.stringify(payload);
  return {
    body,
    headers: { ...json, 'x-pagerduty-signature': signature ? signature(body) : v1(body, PAGERDUTY_SECRET) },
  };
}
const bearer = (token: string) => (payload: unknown) => ({
  body: JSON.stringify(payload),
  headers: { ...json, authorization: sign.bearer(token) },
});
const PD_TRIGGERED = () =>
  pagerdutyIncident('incident.triggered', {
    id: 'PGR0VU2',
    createdAt: '2026-11-22T10:00:00Z',
    occurredAt: '2026-11-22T10:00:00Z',
  });
const OG_CREATE = () =>
  opsgenieAlert('Create', {
    alertId: 'a-1',
    createdAt: '2026-11-22T10:00:00.000Z',
    updatedAt: '2026-11-22T10:00:00.000Z',
    tags: ['service:checkout'],
  });
const DD_TRIGGERED = () => datadogMonitor('Triggered', { cycleKey: 'c1', at: '2026-11-22T10:00:00.000Z' });
const ci = (payload: unknown, token = CI_TOKEN) => ({
  body: JSON.stringify(payload),
  headers: { ...json, authorization: sign.bearer(token) },
});

describe('ingest over HTTP', () => {
  const bus = new RecordingBus();
  let server: RunningServer;
  before(async () => {
    server = await startIngestServer(depsWith(bus));
  });
  after(() => server.close());

  describe('routing', () => {
    test('GET /healthz answers 200', async () => {
      assert.deepEqual(await send(server, '/healthz', { method: 'GET' }).then((r) => [r.status, r.body]), [
        200,
        { status: 'ok' },
      ]);
    });
    test('an unknown path is a 404 that lists the sources', async () => {
      const r = await send(server, '/gitlab', { body: '{}', headers: json });
      assert.equal(r.status, 404);
      assert.equal(r.body.error, 'unknown_path');
      assert.match(
        String(r.body.message),
        /\/github, \/spinnaker, \/terraform, \/circleci, \/deployments, \/pagerduty, \/opsgenie or \/datadog/,
      );
    });
    test('GET on a source is a 405 with Allow: POST', async () => {
      const r = await send(server, '/github', { method: 'GET' });
      assert.equal(r.status, 405);
      assert.equal(r.headers.get('allow'), 'POST');
    });
    test('POST /healthz is a 405', async () => {
      assert.equal((await send(server, '/healthz', { body: '{}', headers: json })).status, 405);
    });
  });

  describe('content type', () => {
    for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1']) {
      test(`${contentType} is a 415`, async () => {
        const { body, headers } = github('ping', { zen: 'x' });
        const r = await send(server, '/github', { body, headers: { ...headers, 'content-type': contentType } });
        assert.equal(r.status, 415);
        assert.equal(r.body.error, 'unsupported_media_type');
      });
    }
    test('a missing Content-Type is a 415', async () => {
      const r = await send(server, '/deployments', {
        body: Buffer.from('{}'),
        headers: { authorization: sign.bearer(CI_TOKEN) },
      });
      assert.equal(r.status, 415);
    });
    test('application/vnd.github+json is JSON', async () => {
      const { body, headers } = github('ping', { zen: 'x' });
      const r = await send(server, '/github', {
        body,
        headers: { ...headers, 'content-type': 'application/vnd.github+json' },
      });
      assert.equal(r.status, 200);
    });
  });

  describe('authentication', () => {
    const cases: Array<[string, string, () => { body: string; headers: Record<string, string> }]> = [
      [
        'GitHub without a signature',
        '/github',
        () => {
          const { body, headers } = github('push', githubPush());
          const { ['x-hub-signature-256']: _, ...unsigned } = headers;
          return { body, headers: unsigned };
        },
      ],
      ['GitHub signed with another secret', '/github', () => github('push', githubPush(), 'not-the-secret')],
      [
        'GitHub with a SHA-1 signature only',
        '/github',
        () => {
          const { body, headers } = github('push', githubPush());
          return { body, headers: { ...headers, 'x-hub-signature-256': 'sha1=' + 'a'.repeat(40) } };
        },
      ],
      [
        'GitHub whose body changed after signing',
        '/github',
        () => {
          const { headers } = github('push', githubPush());
          return { body: JSON.stringify({ ...githubPush(), after: 'f'.repeat(40) }), headers };
        },
      ],
      ['Terraform signed with another token', '/terraform', () => terraform(terraformNotification(), 'nope')],
      [
        'Terraform signed with SHA-256',
        '/terraform',
        () => {
          const t = terraform(terraformNotification());
          return {
            ...t,
            headers: { ...t.headers, 'x-tfe-notification-signature': sign.github(t.body, TERRAFORM_TOKEN).slice(7) },
          };
        },
      ],
      [
        'Spinnaker with a wrong bearer token',
        '/spinnaker',
        () => spinnaker(spinnakerPipelineEvent(), sign.bearer('nope')),
      ],
      [
        'Spinnaker with a wrong Basic password',
        '/spinnaker',
        () => spinnaker(spinnakerPipelineEvent(), sign.basic('echo', 'nope')),
      ],
      [
        'Spinnaker without Authorization',
        '/spinnaker',
        () => ({ body: JSON.stringify(spinnakerPipelineEvent()), headers: json }),
      ],
      [
        'CI with Basic auth (only Bearer is taken)',
        '/deployments',
        () =>
          ci(ciDeployment(), 'x') && {
            body: JSON.stringify(ciDeployment()),
            headers: { ...json, authorization: sign.basic('ci', CI_TOKEN) },
          },
      ],
      ['CI with a wrong token', '/deployments', () => ci(ciDeployment(), 'nope')],
      [
        'CircleCI signed with another secret',
        '/circleci',
        () => circleci(circleciWorkflowCompleted(), (b) => v1(b, 'nope')),
      ],
      [
        'CircleCI without a signature',
        '/circleci',
        () => {
          const { body, headers } = circleci(circleciWorkflowCompleted());
          const { ['circleci-signature']: _, ...unsigned } = headers;
          return { body, headers: unsigned };
        },
      ],
      [
        'CircleCI with only a v2 signature',
        '/circleci',
        () => circleci(circleciWorkflowCompleted(), (b) => v1(b, CIRCLECI_SECRET).replace('v1=', 'v2=')),
      ],
      ['PagerDuty signed with another secret', '/pagerduty', () => pagerduty(PD_TRIGGERED(), (b) => v1(b, 'nope'))],
      ['PagerDuty without a signature', '/pagerduty', () => ({ body: JSON.stringify(PD_TRIGGERED()), headers: json })],
      ['Opsgenie with a wrong token', '/opsgenie', () => bearer('nope')(OG_CREATE())],
      ['Datadog with a wrong token', '/datadog', () => bearer('nope')(DD_TRIGGERED())],
      ['Datadog with the Opsgenie token', '/datadog', () => bearer(OPSGENIE_TOKEN)(DD_TRIGGERED())],
    ];
    for (const [name, path, request] of cases) {
      test(`${name} is a 401 and publishes nothing`, async () => {
        const before = bus.published.length;
        const r = await send(server, path, request());
        assert.equal(r.status, 401);
        assert.equal(r.body.error, 'unauthorized');
        assert.equal(bus.published.length, before);
      });
    }

    test('PagerDuty: during a rotation, any v1 signature of the list may match', async () => {
      const r = await send(
        server,
        '/pagerduty',
        pagerduty(PD_TRIGGERED(), (b) => `${v1(b, 'the-old-secret')},${v1(b, PAGERDUTY_SECRET)}`),
      );
      assert.equal(r.status, 202, JSON.stringify(r.body));
    });
    test('PagerDuty ping and not-counted events are a 200', async () => {
      for (const type of ['pagey.ping', 'incident.annotated']) {
        const payload = PD_TRIGGERED();
        (payload.event as { event_type: string }).event_type = type;
        const r = await send(server, '/pagerduty', pagerduty(payload));
        assert.equal(r.status, 200, type);
      }
    });
    test('an incident update without its times is a 400 naming the field', async () => {
      const payload = PD_TRIGGERED();
      (payload.event as { occurred_at: string }).occurred_at = 'soon';
      const r = await send(server, '/pagerduty', pagerduty(payload));
      assert.equal(r.status, 400);
      assert.equal(r.body.field, 'event.occurred_at');
    });
    test('CircleCI: any v1 entry of the comma-separated list may match', async () => {
      const r = await send(
        server,
        '/circleci',
        circleci(circleciWorkflowCompleted(), (b) => `v1=${'0'.repeat(64)},v1=${v1(b, CIRCLECI_SECRET).slice(3)}`),
      );
      assert.equal(r.status, 202);
    });
    test('the previous GitHub secret is still accepted during a rotation', async () => {
      const r = await send(server, '/github', github('push', githubPush(), GITHUB_OLD_SECRET));
      assert.equal(r.status, 202);
    });
    test('Spinnaker Basic auth takes the token as the password, whatever the user', async () => {
      const r = await send(
        server,
        '/spinnaker',
        spinnaker(spinnakerPipelineEvent(), sign.basic('echo', SPINNAKER_TOKEN)),
      );
      assert.equal(r.status, 202);
    });
  });

  describe('bodies that are not the source envelope are a 400 naming the problem', () => {
    test('truncated JSON, signed: 400', async () => {
      const whole = JSON.stringify(githubPush());
      const r = await send(server, '/github', github('push', whole.slice(0, whole.length / 2)));
      assert.equal(r.status, 400);
      assert.equal(r.body.field, '(body)');
      assert.match(String(r.body.message), /not valid JSON/);
    });
    test('truncated JSON, unsigned: 401 first, as a JSON body (not the framework page)', async () => {
      const r = await send(server, '/github', {
        body: '{"ref": "refs/hea',
        headers: { ...json, 'x-github-event': 'push' },
      });
      assert.equal(r.status, 401);
    });
    const cases: Array<[string, string, () => { body: string; headers: Record<string, string> }, string]> = [
      ['a JSON array', '/github', () => github('push', [1, 2]), '(body)'],
      ['a JSON string', '/deployments', () => ci('deploy'), '(body)'],
      [
        'GitHub without X-GitHub-Event',
        '/github',
        () => {
          const { body, headers } = github('push', githubPush());
          const { ['x-github-event']: _, ...rest } = headers;
          return { body, headers: rest };
        },
        'X-GitHub-Event',
      ],
      [
        'a push without repository',
        '/github',
        () => github('push', { ...githubPush(), repository: undefined }),
        'repository',
      ],
      [
        'a deployment_status without deployment.sha',
        '/github',
        () => {
          const status = githubExamples('deployment_status')[0] ?? {};
          (status.deployment as Record<string, unknown>).sha = 42;
          return github('deployment_status', status);
        },
        'deployment.sha',
      ],
      ['a Spinnaker event without details', '/spinnaker', () => spinnaker({ content: {} }), 'details'],
      [
        'a Spinnaker pipeline end without its execution',
        '/spinnaker',
        () => spinnaker({ ...spinnakerPipelineEvent(), content: {} }),
        'content.execution',
      ],
      [
        'a Terraform payload of an unknown version',
        '/terraform',
        () => terraform({ ...terraformNotification(), payload_version: 3 }),
        'payload_version',
      ],
      [
        'a finished Terraform run without run_id',
        '/terraform',
        () => terraform({ ...terraformNotification(), run_id: null }),
        'run_id',
      ],
      [
        'a CircleCI workflow-completed without its workflow',
        '/circleci',
        () => circleci({ ...circleciWorkflowCompleted(), workflow: undefined }),
        'workflow',
      ],
      ['a CI deploy without service', '/deployments', () => ci({ ...ciDeployment(), service: undefined }), 'service'],
      ['a CI deploy with status "done"', '/deployments', () => ci(ciDeployment({ status: 'done' })), 'status'],
      [
        'a CI deploy without a time zone',
        '/deployments',
        () => ci(ciDeployment({ finishedAt: '2026-11-22 10:00' })),
        'finishedAt',
      ],
      [
        'a CI deploy that finished before it started',
        '/deployments',
        () => ci(ciDeployment({ finishedAt: '2026-11-22T09:00:00Z' })),
        'finishedAt',
      ],
      [
        'a CI deploy with a repository that is not owner/name',
        '/deployments',
        () => ci(ciDeployment({ repository: 'billing' })),
        'repository',
      ],
      // What the envelope lets through but process could never store (issue 12: a 202 is a promise).
      [
        'a Spinnaker pipeline of application ""',
        '/spinnaker',
        () => {
          const event = spinnakerPipelineEvent();
          (event.content as { execution: Record<string, unknown> }).execution.application = '';
          return spinnaker(event);
        },
        'deploy.service',
      ],
      [
        'a Spinnaker pipeline that ended in the year 10000',
        '/spinnaker',
        () => {
          const event = spinnakerPipelineEvent();
          (event.content as { execution: Record<string, unknown> }).execution.endTime = Date.UTC(10000, 0, 1);
          return spinnaker(event);
        },
        'deploy.finishedAt',
      ],
      [
        'a Terraform run with run_id ""',
        '/terraform',
        () => terraform({ ...terraformNotification(), run_id: '' }),
        'deploy.externalId',
      ],
      [
        'a push whose commit has id ""',
        '/github',
        () => {
          const push = githubPush();
          (push.commits as Array<Record<string, unknown>>)[0]!.id = '';
          return github('push', push);
        },
        'commit.sha',
      ],
      [
        'a CI id whose stored document id would pass 1,500 bytes',
        '/deployments',
        () => ci(ciDeployment({ id: '☃'.repeat(200) })),
        'deploy.id',
      ],
    ];
    for (const [name, path, request, field] of cases) {
      test(`${name}: 400 naming ${field}`, async () => {
        const r = await send(server, path, request());
        assert.equal(r.status, 400);
        assert.equal(r.body.error, 'invalid_payload');
        assert.equal(r.body.field, field);
      });
    }
  });

  describe('deliveries with nothing to count are a 200 and publish nothing', () => {
    const mergedPr = githubMergedPullRequest();
    const cases: Array<[string, string, () => { body: string; headers: Record<string, string> }]> = [
      ['GitHub ping', '/github', () => github('ping', githubExamples('ping')[0])],
      ['a pull request opened', '/github', () => github('pull_request', githubExamples('pull_request')[0])],
      [
        'a pull request closed unmerged, merge_commit_sha and all',
        '/github',
        () => {
          const closed = githubExamples('pull_request').find((p) => p.action === 'closed');
          return github('pull_request', closed);
        },
      ],
      [
        'a deployment in progress',
        '/github',
        () => github('deployment_status', githubExamples('deployment_status')[1]),
      ],
      [
        'a deployment event (counted from its status instead)',
        '/github',
        () => github('deployment', githubExamples('deployment')[0]),
      ],
      ['a workflow_run event', '/github', () => github('workflow_run', githubExamples('workflow_run')[0])],
      ['a branch deletion', '/github', () => github('push', githubExamples('push')[1])],
      ['an issue without the incident label', '/github', () => github('issues', githubIssue('opened', ['bug']))],
      ['a Spinnaker stage start', '/spinnaker', () => spinnaker(spinnakerPipelineEvent('orca:stage:starting'))],
      [
        'a Spinnaker orchestration end',
        '/spinnaker',
        () => spinnaker(spinnakerPipelineEvent('orca:orchestration:complete')),
      ],
      [
        'the Terraform verification request',
        '/terraform',
        () => terraform(terraformNotification('verification', null)),
      ],
      [
        'a Terraform plan that needs attention',
        '/terraform',
        () => terraform(terraformNotification('run:needs_attention', 'planned')),
      ],
      [
        'a Terraform plan-only run (planned_and_finished)',
        '/terraform',
        () => terraform(terraformNotification('run:completed', 'planned_and_finished')),
      ],
      [
        'a Terraform v2 assessment with a numeric version',
        '/terraform',
        () => terraform({ payload_version: 2, trigger_scope: 'assessment', notification_configuration_url: 'x' }),
      ],
      ['an HCP Terraform drift detection (payload version "2")', '/terraform', () => terraform(terraformAssessment())],
      [
        'an HCP Terraform check failure',
        '/terraform',
        () => terraform(terraformAssessment('assessment:check_failure')),
      ],
      ['an HCP Terraform failed assessment', '/terraform', () => terraform(terraformAssessment('assessment:failed'))],
      [
        'an HCP Terraform verification of a version 2 configuration',
        '/terraform',
        () => terraform({ ...terraformAssessment(), trigger: 'verification', trigger_scope: 'verification' }),
      ],
      ['a CircleCI job-completed', '/circleci', () => circleci(circleciJobCompleted())],
    ];
    for (const [name, path, request] of cases) {
      test(name, async () => {
        const before = bus.published.length;
        const r = await send(server, path, request());
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(bus.published.length, before);
      });
    }
    test('a merged pull request is not among them', async () => {
      assert.equal((await send(server, '/github', github('pull_request', mergedPr))).status, 202);
    });
  });

  describe('accepted deliveries are published with their exact bytes', () => {
    const cases: Array<
      [string, string, () => { body: string; headers: Record<string, string> }, Record<string, string>]
    > = [
      [
        'a GitHub push',
        '/github',
        () => github('push', githubPush(), GITHUB_SECRET, 'delivery-push-1'),
        { source: 'github', eventType: 'push', deliveryId: 'delivery-push-1' },
      ],
      [
        'a successful GitHub deployment status',
        '/github',
        () => github('deployment_status', githubExamples('deployment_status')[0], GITHUB_SECRET, 'delivery-ds-1'),
        { source: 'github', eventType: 'deployment_status', deliveryId: 'delivery-ds-1' },
      ],
      [
        'a Spinnaker pipeline completion',
        '/spinnaker',
        () => spinnaker(spinnakerPipelineEvent()),
        {
          source: 'spinnaker',
          eventType: 'orca:pipeline:complete',
          deliveryId: '2d6f5a7e-3c51-4c8e-9a2b-6d7c1c1e9f01',
        },
      ],
      [
        'a Spinnaker failure wrapped by Echo (rest.endpoints wrap: true)',
        '/spinnaker',
        () => {
          const { eventId: _, ...event } = spinnakerPipelineEvent('orca:pipeline:failed', 'TERMINAL');
          return spinnaker({ eventName: 'spinnaker_events', payload: event });
        },
        {
          source: 'spinnaker',
          eventType: 'orca:pipeline:failed',
          deliveryId: '01JD7Y3K3M5B9X2Q8W4T6R1N0P:orca:pipeline:failed',
        },
      ],
      [
        'a Spinnaker event flattened by Echo (flatten: true)',
        '/spinnaker',
        () => {
          const event = spinnakerPipelineEvent();
          return spinnaker({
            ...event,
            details: JSON.stringify(event.details),
            content: JSON.stringify(event.content),
          });
        },
        {
          source: 'spinnaker',
          eventType: 'orca:pipeline:complete',
          deliveryId: '2d6f5a7e-3c51-4c8e-9a2b-6d7c1c1e9f01',
        },
      ],
      [
        'an applied Terraform run',
        '/terraform',
        () => terraform(terraformNotification()),
        { source: 'terraform', eventType: 'run:completed', deliveryId: 'run-FwnENkvDnrpyFC7M:applied' },
      ],
      [
        'an errored Terraform run',
        '/terraform',
        () => terraform(terraformNotification('run:errored', 'errored')),
        { source: 'terraform', eventType: 'run:errored', deliveryId: 'run-FwnENkvDnrpyFC7M:errored' },
      ],
      [
        'a CI deployment',
        '/deployments',
        () => ci(ciDeployment()),
        { source: 'ci', eventType: 'deployment', deliveryId: 'ci:billing:jenkins-billing-deploy-1842' },
      ],
      [
        'a CircleCI workflow-completed (its event id is the delivery id)',
        '/circleci',
        () => circleci(circleciWorkflowCompleted()),
        { source: 'circleci', eventType: 'workflow-completed', deliveryId: '3888f21b-eaa7-38e3-8f3d-75a63bba8895' },
      ],
      [
        'a PagerDuty incident.triggered (its event id is the delivery id)',
        '/pagerduty',
        () => pagerduty(PD_TRIGGERED()),
        {
          source: 'pagerduty',
          eventType: 'incident.triggered',
          deliveryId: 'PGR0VU2-incident.triggered-2026-11-22T10:00:00Z',
        },
      ],
      [
        'an Opsgenie Create',
        '/opsgenie',
        () => bearer(OPSGENIE_TOKEN)(OG_CREATE()),
        { source: 'opsgenie', eventType: 'Create', deliveryId: 'a-1:Create:1795341600000000000' },
      ],
      [
        'a Datadog monitor Triggered',
        '/datadog',
        () => bearer(DATADOG_TOKEN)(DD_TRIGGERED()),
        { source: 'datadog', eventType: 'monitor.Triggered', deliveryId: 'c1-Triggered' },
      ],
      [
        'a GitHub issue labelled incident',
        '/github',
        () => github('issues', githubIssue('opened', ['incident'])),
        { source: 'github', eventType: 'issues', deliveryId: 'a7d3c1e0-0000-4000-8000-000000000001' },
      ],
    ];
    for (const [name, path, request, attributes] of cases) {
      test(name, async () => {
        const sent = request();
        const r = await send(server, path, sent);
        assert.equal(r.status, 202, JSON.stringify(r.body));
        assert.deepEqual(r.body, { status: 'accepted', deliveryId: attributes.deliveryId });
        const message = bus.published.at(-1);
        assert.equal(message?.topic, 'devstats-raw');
        assert.deepEqual(message?.attributes, { ...attributes, receivedAt: '2026-11-22T10:05:00.123Z' });
        assert.ok(message?.data.equals(Buffer.from(sent.body)));
      });
    }

    test('a CI deployment without an id gets the same delivery id every time it is posted', async () => {
      const { id: _, ...body } = ciDeployment();
      const first = await send(server, '/deployments', ci(body));
      const second = await send(server, '/deployments', ci({ ...body, finishedAt: '2026-11-22T11:01:30+01:00' }));
      assert.equal(first.status, 202);
      assert.match(String(first.body.deliveryId), /^ci:billing:[0-9a-f]{32}$/);
      assert.equal(second.body.deliveryId, first.body.deliveryId);
    });

    test('a CI deployment with fields DevStats does not read is accepted, and the 202 lists them', async () => {
      const { commitSha, ...rest } = ciDeployment();
      const r = await send(server, '/deployments', ci({ ...rest, sha: commitSha, commit_sha: commitSha, team: 'x' }));
      assert.equal(r.status, 202);
      assert.deepEqual(r.body.warnings, [
        'field "sha" is not read and was ignored; did you mean "commitSha"?',
        'field "commit_sha" is not read and was ignored; did you mean "commitSha"?',
        'field "team" is not read and was ignored; the fields are service, environment, status, startedAt, finishedAt, commitSha, repository, version, actor, url, id',
      ]);
      const clean = await send(server, '/deployments', ci(ciDeployment()));
      assert.equal(clean.status, 202);
      assert.equal(clean.body.warnings, undefined);
    });

    test('a 2 MB push with unicode passes, byte for byte', async () => {
      const payload = githubPush(2 * 1024 * 1024);
      const sent = github('push', payload);
      assert.ok(Buffer.byteLength(sent.body) > 2 * 1024 * 1024);
      const r = await send(server, '/github', sent);
      assert.equal(r.status, 202);
      assert.ok(bus.published.at(-1)?.data.equals(Buffer.from(sent.body, 'utf8')));
    });

    test('a body signed as sent, with unusual spacing and escapes, keeps its bytes', async () => {
      const body = `{ "zen" : "caf\\u00e9 — 東京 🚀",\n  "hook_id": 1 }`;
      const r = await send(server, '/github', github('ping', body));
      assert.equal(r.status, 200);
      const push = `{"ref":"refs/heads/main","before":"${'0'.repeat(40)}","after":"${'1'.repeat(40)}",\n"repository":{"full_name":"acme/café"},"commits":[{"id":"${'1'.repeat(40)}","timestamp":"2026-11-20T10:00:00+01:00","author":{"name":"Zoë"},"message":"naïve \\ud83d\\ude80"}]}`;
      const accepted = await send(server, '/github', github('push', push));
      assert.equal(accepted.status, 202);
      assert.equal(bus.published.at(-1)?.data.toString('utf8'), push);
    });
  });
});

describe('ingest limits and outages', () => {
  test('a body over DEVSTATS_MAX_BODY_BYTES is a 413, before any signature check', async () => {
    const server = await startIngestServer(depsWith(new RecordingBus(), { maxBodyBytes: 1024 }));
    try {
      const r = await send(server, '/github', { body: JSON.stringify(githubPush(4096)), headers: json });
      assert.equal(r.status, 413);
      assert.equal(r.body.error, 'payload_too_large');
    } finally {
      await server.close();
    }
  });

  test('a source whose secret is unset is refused, unless DEVSTATS_INSECURE_DEV is set', async () => {
    const unset = everySource([]);
    const strict = await startIngestServer(depsWith(new RecordingBus(), { secrets: unset }));
    const bus = new RecordingBus();
    const insecure = await startIngestServer(depsWith(bus, { secrets: unset, insecureDev: true }));
    try {
      const refused = await send(strict, '/deployments', { body: JSON.stringify(ciDeployment()), headers: json });
      assert.equal(refused.status, 401);
      assert.match(String(refused.body.message), /secret is not configured/);
      const accepted = await send(insecure, '/deployments', { body: JSON.stringify(ciDeployment()), headers: json });
      assert.equal(accepted.status, 202);
      assert.equal(bus.published.length, 1);
    } finally {
      await Promise.all([strict.close(), insecure.close()]);
    }
  });

  test('a secret rotated in its file reaches a running instance without a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'devstats-secret-'));
    const file = join(dir, 'value');
    writeFileSync(file, 'first-secret');
    let clock = Date.parse('2026-11-22T10:00:00Z');
    const bus = new RecordingBus();
    const deps = depsWith(bus, {
      secrets: { ...depsWith(bus).config.secrets, github: [] },
      secretFiles: { github: file },
      secretTtlMs: 30_000,
    });
    const server = await startIngestServer({ ...deps, now: () => new Date(clock) });
    try {
      const ping = (secret: string) => send(server, '/github', github('ping', { zen: 'x' }, secret));
      assert.equal((await ping('first-secret')).status, 200);
      writeFileSync(file, 'second-secret,first-secret'); // the rotation begins: both
      clock += 31_000;
      assert.equal((await ping('second-secret')).status, 200);
      assert.equal((await ping('first-secret')).status, 200);
      writeFileSync(file, 'second-secret'); // and ends
      clock += 31_000;
      assert.equal((await ping('first-secret')).status, 401);
      assert.equal((await ping('second-secret')).status, 200);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('when the bus cannot take the message: 503 with Retry-After, never a 2xx', async () => {
    const bus = new RecordingBus();
    bus.failing = true;
    const server = await startIngestServer(depsWith(bus));
    try {
      const r = await send(server, '/deployments', ci(ciDeployment()));
      assert.equal(r.status, 503);
      assert.equal(r.headers.get('retry-after'), '30');
      assert.equal(r.body.error, 'unavailable');
      // A ping needs no bus, so it is still answered.
      assert.equal((await send(server, '/github', github('ping', { zen: 'x' }))).status, 200);
    } finally {
      await server.close();
    }
  });

  test('logs name the source and delivery, never the payload or a secret', async () => {
    const deps = depsWith(new RecordingBus());
    const server = await startIngestServer(deps);
    try {
      await send(server, '/github', github('push', githubPush(), GITHUB_SECRET, 'log-delivery'));
      await send(server, '/github', github('push', githubPush(), 'wrong'));
      const lines = (deps.logger as ReturnType<typeof memoryLogger>).entries;
      assert.deepEqual(
        lines.map((l) => [l.severity, l.status, l.source, l.deliveryId]),
        [
          ['INFO', 202, 'github', 'log-delivery'],
          ['WARNING', 401, undefined, undefined],
        ],
      );
      const text = JSON.stringify(lines);
      assert.ok(!text.includes(GITHUB_SECRET) && !text.includes('Codertocat'), text);
    } finally {
      await server.close();
    }
  });
});
