import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface WebhookExamples {
  name: string;
  examples: Array<Record<string, unknown>>;
}
const examples = require('@octokit/webhooks-examples') as WebhookExamples[];

/** The public GitHub webhook examples for one event (octokit/webhooks). */
export function githubExamples(event: string): Array<Record<string, unknown>> {
  const found = examples.find((e) => e.name === event);
  if (found === undefined) throw new Error(`no GitHub example for ${event}`);
  return structuredClone(found.examples);
}

/** A push to the default branch with commits (the public example), optionally grown to `bytes`. */
export function githubPush(bytes = 0): Record<string, unknown> {
  const push = githubExamples('push').find((p) => Array.isArray(p.commits) && p.commits.length > 0);
  if (push === undefined) throw new Error('no push example with commits');
  const commits = push.commits as Array<Record<string, unknown>>;
  const template = commits[0] ?? {};
  // Grown by each added commit's own size: stringifying the whole push each time would be quadratic.
  let size = Buffer.byteLength(JSON.stringify(push));
  for (let i = 0; size < bytes; i++) {
    const commit = {
      ...template,
      id: i.toString(16).padStart(40, '0'),
      message: `change ${i} — ünïcødé ✓ `.repeat(20),
    };
    commits.push(commit);
    size += Buffer.byteLength(JSON.stringify(commit)) + 1;
  }
  return push;
}

/** The public `closed` pull_request example, merged (the examples hold only unmerged closes). */
export function githubMergedPullRequest(): Record<string, unknown> {
  const closed = githubExamples('pull_request').find((p) => p.action === 'closed');
  if (closed === undefined) throw new Error('no closed pull_request example');
  const pr = closed.pull_request as Record<string, unknown>;
  pr.merged = true;
  pr.merged_at = '2019-05-15T15:20:40Z';
  return closed;
}

/**
 * A Spinnaker Echo event as the REST endpoint posts it (echo-api `Event`: details, content,
 * eventId), for an Orca pipeline that ended. Written from Echo's and Orca's documented shapes.
 */
export function spinnakerPipelineEvent(type = 'orca:pipeline:complete', status = 'SUCCEEDED'): Record<string, unknown> {
  return {
    eventId: '2d6f5a7e-3c51-4c8e-9a2b-6d7c1c1e9f01',
    details: {
      source: 'orca',
      type,
      created: '1763812800000',
      organization: null,
      project: null,
      application: 'checkout',
      _content_id: null,
      attributes: null,
      requestHeaders: {},
    },
    content: {
      executionId: '01JD7Y3K3M5B9X2Q8W4T6R1N0P',
      execution: {
        type: 'PIPELINE',
        id: '01JD7Y3K3M5B9X2Q8W4T6R1N0P',
        application: 'checkout',
        name: 'Deploy to production',
        status,
        canceled: status === 'CANCELED',
        startTime: 1763812500000,
        endTime: 1763812800000,
        trigger: {
          type: 'git',
          user: 'anonymous',
          source: 'github',
          project: 'acme',
          slug: 'checkout',
          branch: 'main',
          hash: '0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c',
        },
        stages: [
          {
            type: 'deploy',
            name: 'Deploy in prod',
            status,
            context: { account: 'prod-gke', cloudProvider: 'kubernetes' },
          },
        ],
      },
    },
  };
}

/** An HCP Terraform notification, payload version 1 (HashiCorp's documented example shape). */
export function terraformNotification(
  trigger = 'run:completed',
  runStatus: string | null = 'applied',
): Record<string, unknown> {
  return {
    payload_version: 1,
    notification_configuration_id: 'nc-AeUQ2zfKZzW9TiGZ',
    run_url: 'https://app.terraform.io/app/acme/checkout-production/runs/run-FwnENkvDnrpyFC7M',
    run_id: trigger === 'verification' ? null : 'run-FwnENkvDnrpyFC7M',
    run_message: 'Queued manually using Terraform',
    run_created_at: '2026-11-22T10:00:00.000Z',
    run_created_by: 'sally',
    workspace_id: trigger === 'verification' ? null : 'ws-XdeUVMWShTesDMME',
    workspace_name: trigger === 'verification' ? null : 'checkout-production',
    organization_name: trigger === 'verification' ? null : 'acme',
    notifications: [
      {
        message: trigger === 'verification' ? 'Verification of checkout-production' : 'Apply complete',
        trigger,
        run_status: runStatus,
        run_updated_at: '2026-11-22T10:04:10.000Z',
        run_updated_by: 'sally',
      },
    ],
  };
}

/**
 * An HCP Terraform assessment notification, payload version 2 (HashiCorp's documented shape: the
 * version is the string "2", the trigger is `assessment:drifted`, `assessment:check_failure` or
 * `assessment:failed`, and no run is named).
 */
export function terraformAssessment(trigger = 'assessment:drifted'): Record<string, unknown> {
  return {
    payload_version: '2',
    notification_configuration_id: 'nc-SZ3V3cLFxK6sqLKn',
    notification_configuration_url: 'https://app.terraform.io/api/v2/notification-configurations/nc-SZ3V3cLFxK6sqLKn',
    trigger_scope: 'assessment',
    trigger,
    message: trigger === 'assessment:drifted' ? 'Drift Detected' : 'Assessment needs attention',
    details: {
      new_assessment_result: {
        id: 'asmtres-vRVQxpqq64EA9V5a',
        url: 'https://app.terraform.io/api/v2/assessment-results/asmtres-vRVQxpqq64EA9V5a',
        succeeded: trigger !== 'assessment:failed',
        drifted: trigger === 'assessment:drifted',
        all_checks_succeeded: trigger !== 'assessment:check_failure',
        resources_drifted: 4,
        resources_undrifted: 55,
        checks_passed: 33,
        checks_failed: trigger === 'assessment:check_failure' ? 2 : 0,
        checks_errored: 0,
        checks_unknown: 0,
        created_at: '2026-11-22T05:23:10Z',
      },
      prior_assessment_result: null,
      workspace_id: 'ws-XdeUVMWShTesDMME',
      workspace_name: 'checkout-production',
      organization_name: 'acme',
    },
  };
}

/** The generic `/deployments` body a CI job posts. */
export function ciDeployment(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    service: 'billing',
    environment: 'production',
    status: 'success',
    startedAt: '2026-11-22T09:58:00.000Z',
    finishedAt: '2026-11-22T10:01:30.000Z',
    commitSha: '9f2c1e0b7a3d4c5e6f708192a3b4c5d6e7f80912',
    repository: 'acme/billing',
    id: 'jenkins-billing-deploy-1842',
    ...overrides,
  };
}

/**
 * A CircleCI `workflow-completed` outbound webhook, shaped as CircleCI's webhooks reference
 * documents it (https://circleci.com/docs/webhooks-reference/#sample-webhook-payloads).
 */
export function circleciWorkflowCompleted(workflow = 'deploy-production', status = 'success'): Record<string, unknown> {
  return {
    id: '3888f21b-eaa7-38e3-8f3d-75a63bba8895',
    type: 'workflow-completed',
    happened_at: '2026-11-22T09:49:34.317Z',
    webhook: { id: 'cf8c4fdd-0587-4da1-b4ca-4846e9640af9', name: 'devstats' },
    project: { id: '84996744-a854-4f5e-aea3-04e2851dc1d2', name: 'payments-api', slug: 'github/acme/payments-api' },
    organization: { id: 'f22b6566-597d-46d5-ba74-99ef5bb3d85c', name: 'acme' },
    workflow: {
      id: 'fda08377-fe7e-46b1-8992-3a7aaecac9c3',
      name: workflow,
      created_at: '2026-11-22T09:48:02.000Z',
      stopped_at: '2026-11-22T09:49:34.170Z',
      url: 'https://app.circleci.com/pipelines/github/acme/payments-api/130/workflows/fda08377-fe7e-46b1-8992-3a7aaecac9c3',
      status,
    },
    pipeline: {
      id: '1285fe1d-d3a6-44fc-8886-8979558254c4',
      number: 130,
      created_at: '2026-11-22T09:48:00.000Z',
      trigger: { type: 'webhook' },
      vcs: {
        provider_name: 'github',
        origin_repository_url: 'https://github.com/acme/payments-api',
        target_repository_url: 'https://github.com/acme/payments-api',
        revision: '1dc6aa69429bff4806ad6afe58d3d8f57e25973e',
        commit: {
          subject: 'Rotate the payment provider key',
          body: '',
          author: { name: 'Alice', email: 'alice@example.com' },
          authored_at: '2026-11-22T09:40:00Z',
          committer: { name: 'GitHub', email: 'noreply@github.com' },
          committed_at: '2026-11-22T09:40:00Z',
        },
        branch: 'main',
      },
    },
  };
}

/** A CircleCI `job-completed` webhook: accepted, never counted. */
export function circleciJobCompleted(): Record<string, unknown> {
  const { workflow, ...rest } = circleciWorkflowCompleted();
  return {
    ...rest,
    id: '8bd26e73-7d6e-4ab8-a6c8-1e6a4aa0b0b5',
    type: 'job-completed',
    workflow,
    job: { id: 'c5a6bd0b-4fd7-4b8c-9f9e-2a3f1b1b2f00', name: 'terraform-plan', number: 812, status: 'success' },
  };
}

/**
 * A Cloud Build notification's data: the Build resource (the fields of the REST reference), here a
 * Terraform apply started by a trigger.
 */
export function cloudBuild(status = 'SUCCESS', overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: '8c2f4b1e-7d3a-4e5f-9a6b-0c1d2e3f4a5b',
    projectId: 'acme-ci',
    status,
    createTime: '2026-11-22T09:59:30.123456Z',
    startTime: '2026-11-22T10:00:00.000000Z',
    ...(['QUEUED', 'PENDING', 'WORKING'].includes(status) ? {} : { finishTime: '2026-11-22T10:04:30.500000Z' }),
    steps: [{ name: 'hashicorp/terraform:1.9', args: ['apply', '-auto-approve'] }],
    logUrl: 'https://console.cloud.google.com/cloud-build/builds/8c2f4b1e-7d3a-4e5f-9a6b-0c1d2e3f4a5b?project=123',
    tags: ['trigger-3f1c2b', 'devstats-service-network', 'devstats-env-prod'],
    substitutions: {
      COMMIT_SHA: '5b1a2f3c4d5e6f708192a3b4c5d6e7f809112233',
      SHORT_SHA: '5b1a2f3',
      BRANCH_NAME: 'main',
      REPO_NAME: 'infra-live',
      REPO_FULL_NAME: 'acme/infra-live',
      TRIGGER_NAME: 'infra-apply-prod',
    },
    ...overrides,
  };
}

/**
 * GitHub's public `issues` example for an action, with its labels replaced (the `incident` label
 * makes it an incident) and, for a close, closed at `closedAt`.
 */
export function githubIssue(
  action: 'opened' | 'closed' | 'reopened' | 'labeled' | 'edited',
  labels: string[],
  times: { createdAt?: string; updatedAt?: string; closedAt?: string } = {},
): Record<string, unknown> {
  const found = githubExamples('issues').find((e) => e.action === (action === 'closed' ? 'opened' : action));
  if (found === undefined) throw new Error(`no issues example for ${action}`);
  const issue = found.issue as Record<string, unknown>;
  issue.labels = labels.map((name, i) => ({ id: 1000 + i, name, color: 'd73a4a', default: false }));
  if (times.createdAt !== undefined) issue.created_at = times.createdAt;
  if (times.updatedAt !== undefined) issue.updated_at = times.updatedAt;
  if (action === 'closed') {
    found.action = 'closed';
    issue.state = 'closed';
    issue.closed_at = times.closedAt ?? issue.updated_at;
  }
  return found;
}

/**
 * A PagerDuty webhook v3 incident event, in the shape of PagerDuty's documented example
 * (developer.pagerduty.com, "Webhooks Overview": event envelope, incident data, service reference).
 */
export function pagerdutyIncident(
  eventType: string,
  incident: { id: string; createdAt: string; occurredAt: string; service?: string | null; title?: string },
): Record<string, unknown> {
  const status =
    eventType === 'incident.resolved'
      ? 'resolved'
      : eventType === 'incident.acknowledged'
        ? 'acknowledged'
        : 'triggered';
  return {
    event: {
      id: `${incident.id}-${eventType}-${incident.occurredAt}`,
      event_type: eventType,
      resource_type: 'incident',
      occurred_at: incident.occurredAt,
      agent: {
        html_url: 'https://acme.pagerduty.com/users/PLH1HKV',
        id: 'PLH1HKV',
        self: 'https://api.pagerduty.com/users/PLH1HKV',
        summary: 'Tenex Engineer',
        type: 'user_reference',
      },
      client: null,
      data: {
        id: incident.id,
        type: 'incident',
        self: `https://api.pagerduty.com/incidents/${incident.id}`,
        html_url: `https://acme.pagerduty.com/incidents/${incident.id}`,
        number: 2,
        status,
        incident_key: 'd3640fbd41094207a1c11e58e46b1662',
        created_at: incident.createdAt,
        title: incident.title ?? 'A little bump in the road',
        service:
          incident.service === null
            ? null
            : {
                html_url: 'https://acme.pagerduty.com/services/PF9KMXH',
                id: 'PF9KMXH',
                self: 'https://api.pagerduty.com/services/PF9KMXH',
                summary: incident.service ?? 'API Service',
                type: 'service_reference',
              },
        assignees: [],
        escalation_policy: {
          html_url: 'https://acme.pagerduty.com/escalation_policies/PUS0KTE',
          id: 'PUS0KTE',
          self: 'https://api.pagerduty.com/escalation_policies/PUS0KTE',
          summary: 'Default',
          type: 'escalation_policy_reference',
        },
        teams: [],
        priority: null,
        urgency: 'high',
        conference_bridge: null,
        resolve_reason: null,
      },
    },
  };
}

/** An Opsgenie Webhook integration post, in the shape of Opsgenie's documented example (action, alert, source). */
export function opsgenieAlert(
  action: string,
  alert: { alertId: string; createdAt: string; updatedAt: string; tags?: string[]; message?: string },
): Record<string, unknown> {
  return {
    action,
    alert: {
      alertId: alert.alertId,
      message: alert.message ?? 'CPU usage is above 90%',
      tags: alert.tags ?? [],
      tinyId: '1791',
      entity: '',
      alias: `${alert.alertId}-alias`,
      createdAt: Date.parse(alert.createdAt),
      // Opsgenie sends updatedAt in nanoseconds.
      updatedAt: Date.parse(alert.updatedAt) * 1_000_000,
      username: 'john.doe@acme.example',
      userId: '4513b7ea-3b91-438f-b7e4-e3e54af9147c',
      description: '',
      team: '',
      responders: [],
      teams: [],
      actions: [],
      details: {},
      priority: 'P2',
      source: 'Datadog',
    },
    source: { name: '', type: 'web' },
    integrationName: 'Webhook',
    integrationId: '37c8f316-17c6-49d7-899b-9c7e540c048d',
    integrationType: 'Webhook',
  };
}

/** A Datadog monitor notification through the Webhooks integration template of docs/sources/datadog.md. */
export function datadogMonitor(
  transition: string,
  alert: { cycleKey: string; at: string; tags?: string; title?: string },
): Record<string, unknown> {
  return {
    kind: 'monitor',
    id: `${alert.cycleKey}-${transition}`,
    alert_cycle_key: alert.cycleKey,
    alert_transition: transition,
    alert_title: alert.title ?? '[Triggered] Error rate is high',
    alert_priority: 'P1',
    date: String(Date.parse(alert.at)),
    tags: alert.tags ?? '',
    link: 'https://app.datadoghq.com/event/event?id=1',
  };
}
