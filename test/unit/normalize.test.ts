import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CanonicalEvent } from '../../shared/events/model.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { normalizeDeployment } from '../../shared/sources/deployments.ts';
import { normalizeGithub } from '../../shared/sources/github.ts';
import type { Normalizer } from '../../shared/sources/normalize.ts';
import { normalizeSpinnaker } from '../../shared/sources/spinnaker.ts';
import { normalizeTerraform } from '../../shared/sources/terraform.ts';
import {
  ciDeployment,
  githubExamples,
  githubMergedPullRequest,
  githubPush,
  spinnakerPipelineEvent,
  terraformAssessment,
  terraformNotification,
} from '../support/fixtures.ts';

const RECEIVED_AT = '2026-11-22T10:05:00.000Z';
const settings = parseSettings({
  bots: ['release-robot'],
  teams: { payments: { services: ['checkout', 'billing'], repositories: ['acme/billing'] } },
  spinnaker: { accounts: { 'gke-eu-1': 'production' } },
  terraform: { workspaces: { 'net-core': { service: 'network', environment: 'production' } } },
});

function run(normalize: Normalizer, body: unknown, eventType = ''): CanonicalEvent[] {
  return normalize(JSON.parse(JSON.stringify(body)), eventType, { settings, receivedAt: RECEIVED_AT });
}

describe('GitHub', () => {
  const push = githubPush();
  // GitHub stamps commits with the committer's local offset.
  (push.commits as Array<Record<string, unknown>>)[0]!.timestamp = '2019-05-15T10:19:25-05:00';
  test('push: one commit per commits[] entry (head_commit not again), times in UTC, plus the Push record', () => {
    assert.deepEqual(run(normalizeGithub, push, 'push'), [
      {
        kind: 'commit',
        id: 'Codertocat/Hello-World@6113728f27ae82c7b1a177c8d03f9e96e0adf246',
        repository: 'Codertocat/Hello-World',
        branch: 'master',
        sha: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
        authorLogin: 'Codertocat',
        authorName: 'Codertocat',
        authorEmail: '21031067+Codertocat@users.noreply.github.com',
        timestamp: '2019-05-15T15:19:25.000Z',
        isBot: false,
        // The files it added, modified or removed: which path-owned services it belongs to.
        paths: ['README.md'],
      },
      {
        kind: 'push',
        id: 'Codertocat/Hello-World:master:0000000000000000000000000000000000000000..6113728f27ae82c7b1a177c8d03f9e96e0adf246',
        repository: 'Codertocat/Hello-World',
        branch: 'master',
        before: '0000000000000000000000000000000000000000',
        after: '6113728f27ae82c7b1a177c8d03f9e96e0adf246',
        commitShas: ['6113728f27ae82c7b1a177c8d03f9e96e0adf246'],
        pushedAt: '2019-05-15T15:20:57.000Z',
        forced: false,
      },
    ]);
  });

  test('push by a bot: its commits are marked isBot (login ending in [bot], or configured)', () => {
    const body = structuredClone(push);
    const commits = body.commits as Array<{ author: Record<string, unknown> }>;
    commits[0]!.author.username = 'dependabot[bot]';
    commits.push({
      ...structuredClone(commits[0]!),
      id: 'b'.repeat(40),
      author: { name: 'Robot', username: 'release-robot' },
    } as never);
    const events = run(normalizeGithub, body, 'push').filter((e) => e.kind === 'commit');
    assert.deepEqual(
      events.map((e) => [e.kind === 'commit' && e.authorLogin, e.kind === 'commit' && e.isBot]),
      [
        ['dependabot[bot]', true],
        ['release-robot', true],
      ],
    );
  });

  test('a branch deletion and a tag push give nothing', () => {
    assert.deepEqual(run(normalizeGithub, githubExamples('push')[1], 'push'), []);
    assert.deepEqual(run(normalizeGithub, githubExamples('push')[0], 'push'), []);
  });

  test('a merged pull request gives one pull_request change, author = the PR user', () => {
    assert.deepEqual(run(normalizeGithub, githubMergedPullRequest(), 'pull_request'), [
      {
        kind: 'pull_request',
        id: 'Codertocat/Hello-World#2',
        repository: 'Codertocat/Hello-World',
        number: 2,
        authorLogin: 'Codertocat',
        isBot: false,
        createdAt: '2019-05-15T15:20:33.000Z',
        mergedAt: '2019-05-15T15:20:40.000Z',
        mergeCommitSha: 'c4295bd74fb0f4fda03689c3df3f2803b658fd85',
        baseRef: 'master',
        headSha: 'ec26c3e57ca3a959ca5aad62de7213c562f8c821',
        commits: 1,
        // Matched against the hotfix patterns (deployment rework).
        labels: ['bug'],
        headRef: 'changes',
      },
    ]);
  });

  test('a pull request closed unmerged gives nothing, though it carries a merge_commit_sha', () => {
    const closed = githubExamples('pull_request').find((p) => p.action === 'closed');
    assert.ok((closed?.pull_request as { merge_commit_sha?: string }).merge_commit_sha);
    assert.deepEqual(run(normalizeGithub, closed, 'pull_request'), []);
  });

  test('a successful deployment_status is a deploy: environment, sha, times, creator as actor', () => {
    const status = githubExamples('deployment_status')[0];
    assert.deepEqual(run(normalizeGithub, status, 'deployment_status'), [
      {
        kind: 'deploy',
        id: 'github:145988746',
        source: 'github',
        service: 'Hello-World',
        environment: 'production',
        status: 'success',
        startedAt: '2019-05-15T15:20:53.000Z',
        finishedAt: '2019-05-15T15:20:55.000Z',
        commitSha: 'f95f852bd8fca8fcc58a9a2d6c842781e32a215e',
        repository: 'Codertocat/Hello-World',
        actor: 'Codertocat',
        externalId: '145988746',
      },
    ]);
  });

  test('a deployment_status from an Actions run: actor = workflow_run.triggering_actor; error → failure; payload names the service', () => {
    const status = githubExamples('deployment_status')[0]!;
    (status.deployment_status as Record<string, unknown>).state = 'error';
    (status.deployment as Record<string, unknown>).payload = { service: 'checkout' };
    status.workflow_run = { triggering_actor: { login: 'octo-deployer' } };
    const [deploy] = run(normalizeGithub, status, 'deployment_status');
    assert.equal(deploy?.kind, 'deploy');
    assert.deepEqual(deploy.kind === 'deploy' && [deploy.service, deploy.status, deploy.actor, deploy.team], [
      'checkout',
      'failure',
      'octo-deployer',
      'payments',
    ]);
  });

  test('deployment, workflow_run and in-progress statuses give nothing', () => {
    assert.deepEqual(run(normalizeGithub, githubExamples('deployment')[0], 'deployment'), []);
    assert.deepEqual(run(normalizeGithub, githubExamples('workflow_run')[0], 'workflow_run'), []);
    assert.deepEqual(run(normalizeGithub, githubExamples('deployment_status')[1], 'deployment_status'), []);
  });
});

describe('Spinnaker', () => {
  const expected = {
    kind: 'deploy',
    id: 'spinnaker:01JD7Y3K3M5B9X2Q8W4T6R1N0P',
    source: 'spinnaker',
    service: 'checkout',
    environment: 'production',
    status: 'success',
    startedAt: '2025-11-22T11:55:00.000Z',
    finishedAt: '2025-11-22T12:00:00.000Z',
    commitSha: '0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c',
    repository: 'acme/checkout',
    actor: null, // trigger.user "anonymous"
    team: 'payments',
    externalId: '01JD7Y3K3M5B9X2Q8W4T6R1N0P',
  };
  const cases: Array<[string, unknown, Record<string, unknown> | null]> = [
    ['a succeeded pipeline, account prod-gke by name → production, anonymous → no actor', spinnakerPipelineEvent(), {}],
    [
      'a failed pipeline (TERMINAL) → failure',
      spinnakerPipelineEvent('orca:pipeline:failed', 'TERMINAL'),
      { status: 'failure' },
    ],
    [
      'a cancelled pipeline arrives as orca:pipeline:failed → cancelled, canceledBy is the actor',
      (() => {
        const e = spinnakerPipelineEvent('orca:pipeline:failed', 'CANCELED');
        (e.content as { execution: Record<string, unknown> }).execution.canceledBy = 'alice';
        return e;
      })(),
      { status: 'cancelled', actor: 'alice' },
    ],
    [
      'the configured account map wins over the name',
      (() => {
        const e = spinnakerPipelineEvent();
        const stages = (e.content as { execution: { stages: Array<{ context: Record<string, unknown> }> } }).execution
          .stages;
        stages[0]!.context.account = 'gke-eu-1';
        return e;
      })(),
      {},
    ],
    ['wrapped by Echo', { eventName: 'spinnaker_events', payload: spinnakerPipelineEvent() }, {}],
    ['a stage event gives nothing', spinnakerPipelineEvent('orca:stage:complete'), null],
  ];
  for (const [name, body, overrides] of cases) {
    test(name, () => {
      assert.deepEqual(run(normalizeSpinnaker, body), overrides === null ? [] : [{ ...expected, ...overrides }]);
    });
  }
  test('a staging account maps by name (stg → staging)', () => {
    const e = spinnakerPipelineEvent();
    const stages = (e.content as { execution: { stages: Array<{ context: Record<string, unknown> }> } }).execution
      .stages;
    stages[0]!.context.account = 'gke-stg-2';
    const [deploy] = run(normalizeSpinnaker, e);
    assert.equal(deploy?.kind === 'deploy' && deploy.environment, 'staging');
  });
  test('the sha from a Jenkins trigger’s buildInfo.scm, else from a git artifact the trigger brought (issue 28)', () => {
    const sha = 'a'.repeat(40);
    const withTrigger = (trigger: Record<string, unknown>) => {
      const e = spinnakerPipelineEvent();
      (e.content as { execution: Record<string, unknown> }).execution.trigger = trigger;
      const [deploy] = run(normalizeSpinnaker, e);
      return deploy?.kind === 'deploy' ? [deploy.commitSha, deploy.repository] : [];
    };
    assert.deepEqual(
      withTrigger({
        type: 'jenkins',
        user: 'anonymous',
        buildInfo: {
          number: 42,
          scm: [{ name: 'origin/main', branch: 'main', sha1: sha, remoteUrl: 'git@github.com:acme/checkout.git' }],
        },
      }),
      [sha, 'acme/checkout'],
    );
    assert.deepEqual(
      withTrigger({
        type: 'docker',
        user: 'anonymous',
        artifacts: [
          { type: 'docker/image', reference: 'gcr.io/acme/checkout:1.4.2', version: '1.4.2' },
          {
            type: 'github/file',
            reference: 'https://api.github.com/repos/acme/checkout/contents/k8s/deploy.yaml',
            version: sha,
          },
        ],
      }),
      [sha, 'acme/checkout'],
    );
    assert.deepEqual(withTrigger({ type: 'manual', user: 'anonymous' }), [undefined, undefined]);
  });
});

describe('Terraform', () => {
  const expected = {
    kind: 'deploy',
    id: 'terraform:run-FwnENkvDnrpyFC7M',
    source: 'terraform',
    service: 'checkout',
    environment: 'production',
    status: 'success',
    startedAt: '2026-11-22T10:00:00.000Z',
    finishedAt: '2026-11-22T10:04:10.000Z',
    actor: 'sally',
    team: 'payments',
    url: 'https://app.terraform.io/app/acme/checkout-production/runs/run-FwnENkvDnrpyFC7M',
    externalId: 'run-FwnENkvDnrpyFC7M',
  };
  const cases: Array<[string, unknown, Record<string, unknown> | null]> = [
    ['applied → success; workspace checkout-production → service checkout, production', terraformNotification(), {}],
    ['errored → failure', terraformNotification('run:errored', 'errored'), { status: 'failure' }],
    ['discarded → cancelled', terraformNotification('run:completed', 'discarded'), { status: 'cancelled' }],
    ['force_canceled → cancelled', terraformNotification('run:completed', 'force_canceled'), { status: 'cancelled' }],
    [
      'run:completed with planned_and_finished is no deploy',
      terraformNotification('run:completed', 'planned_and_finished'),
      null,
    ],
    ['needs_attention is no deploy', terraformNotification('run:needs_attention', 'planned'), null],
    ['payload version 2 is ignored', { payload_version: 2, trigger_scope: 'assessment' }, null],
    ['a drift detection (payload version "2") is ignored', terraformAssessment(), null],
    ['payload version "1" is version 1', { ...terraformNotification(), payload_version: '1' }, {}],
    [
      'the configured workspace map wins',
      { ...terraformNotification(), workspace_name: 'net-core' },
      { service: 'network', team: undefined },
    ],
  ];
  for (const [name, body, overrides] of cases) {
    test(name, () => {
      const want = overrides === null ? [] : [JSON.parse(JSON.stringify({ ...expected, ...overrides })) as unknown];
      assert.deepEqual(run(normalizeTerraform, body), want);
    });
  }
});

describe('CI /deployments', () => {
  test('the body becomes a deploy with id ci:<id>, times in UTC', () => {
    assert.deepEqual(
      run(normalizeDeployment, ciDeployment({ finishedAt: '2026-11-22T11:01:30+01:00', environment: 'prod' })),
      [
        {
          kind: 'deploy',
          id: 'ci:billing:jenkins-billing-deploy-1842',
          source: 'ci',
          service: 'billing',
          environment: 'production',
          status: 'success',
          startedAt: '2026-11-22T09:58:00.000Z',
          finishedAt: '2026-11-22T10:01:30.000Z',
          commitSha: '9f2c1e0b7a3d4c5e6f708192a3b4c5d6e7f80912',
          repository: 'acme/billing',
          actor: null,
          team: 'payments',
          externalId: 'jenkins-billing-deploy-1842',
        },
      ],
    );
  });
});
