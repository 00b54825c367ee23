/**
 * `devstats demo`: a generated, realistic history of two quarters up to today, delivered through
 * ingest (signed, checked, admitted) and process (normalised, stored once, exported), as live
 * webhooks would be. Four services of three teams deploy through a CI job, GitHub deployments
 * and HCP Terraform; developers and two bots commit, open and merge pull requests; some deploys
 * fail or are rolled back, a hotfix branch ships straight to production, a few pull requests are
 * labelled hotfix or revert the change before, PagerDuty incidents
 * follow some deploys, and a few pushes arrive after the deploy that ships them. The history is
 * seeded: the same day gives the same deliveries, so running it twice stores everything once.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { Bus, BusMessage } from '../bus/bus.ts';
import type { Config } from '../pipeline/config.ts';
import type { WebhookSource } from '../sources/registry.ts';
import { createIngest, type IngestRequest, type Outcome } from '../pipeline/ingest.ts';
import type { Logger } from '../log.ts';
import type { ProcessOutcome } from '../pipeline/process.ts';
import type { Settings } from '../events/settings.ts';

/** The teams of the demo history: written next to the data when no configuration file is set. */
export const DEMO_SETTINGS_YAML = `# Written by \`devstats demo\`: the teams of its generated history.
timezone: UTC
bots: [release-robot]
productionEnvironments: [production]
teams:
  payments:
    services:
      - billing
      - checkout
      # Its Terraform lives in the shared acme/infra repository, beside the platform team's.
      - { name: billing-infra, repository: acme/infra, paths: ["terraform/billing/**", "modules/**"] }
    repositories: [acme/billing, acme/checkout]
  search:
    services: [search]
    repositories: [acme/search]
  platform:
    services:
      - { name: network, repository: acme/infra, paths: ["terraform/network/**", "modules/**"] }
`;

interface DemoDelivery {
  path: string;
  headers: Record<string, string>;
  body: string;
  /** When the source would have sent it: deliveries go out in this order. */
  at: number;
}

interface Service {
  name: string;
  repository: string;
  via: 'ci' | 'github' | 'terraform';
  /**
   * A repository of several services, one folder each (a Terraform monorepo, one HCP Terraform
   * workspace per folder): each merge changes one folder (now and then a shared module, so both),
   * and a workspace applies when its folder changed.
   */
  parts?: Array<{ service: string; folder: string; developers: string[] }>;
  developers: string[];
  /** Deploys to production on a working day, at the start and at the end of the history. */
  deploysPerDay: [number, number];
  /** Hours from a change's first commit to its merge, at the start and at the end. */
  hoursToMerge: [number, number];
  environments: string[];
}

const SERVICES: Service[] = [
  {
    name: 'billing',
    repository: 'acme/billing',
    via: 'ci',
    developers: ['alice', 'bob', 'dave'],
    deploysPerDay: [1.5, 4],
    hoursToMerge: [30, 8],
    environments: ['staging', 'production'],
  },
  {
    name: 'checkout',
    repository: 'acme/checkout',
    via: 'github',
    developers: ['bob', 'frank'],
    deploysPerDay: [1, 2],
    hoursToMerge: [20, 14],
    environments: ['production'],
  },
  {
    name: 'search',
    repository: 'acme/search',
    via: 'ci',
    developers: ['carol', 'erin'],
    deploysPerDay: [1, 1.2],
    hoursToMerge: [40, 36],
    environments: ['staging', 'pre-prod', 'production'],
  },
  {
    name: 'infra',
    repository: 'acme/infra',
    via: 'terraform',
    developers: ['grace', 'dave'],
    parts: [
      { service: 'network', folder: 'terraform/network', developers: ['grace'] },
      { service: 'billing-infra', folder: 'terraform/billing', developers: ['dave'] },
    ],
    deploysPerDay: [0.6, 0.9],
    hoursToMerge: [24, 24],
    environments: ['production'],
  },
];

const BOTS = ['dependabot[bot]', 'release-robot'];
const HOUR = 3_600_000;
const DAY = 86_400_000;

/** mulberry32: small, seeded, good enough to make a history look lived in. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

/** The secrets the demo signs with, one for every source. */
type DemoSecrets = Record<WebhookSource, string>;

export function demoSecrets(): DemoSecrets {
  const secret = randomBytes(16).toString('hex');
  return {
    github: secret,
    spinnaker: secret,
    terraform: secret,
    circleci: secret,
    ci: secret,
    pagerduty: secret,
    opsgenie: secret,
    datadog: secret,
  };
}

/**
 * The history's deliveries, oldest first, from the first day of the previous quarter to `now`.
 * `from` (a day) shortens it, for tests.
 */
export function demoHistory(
  now: Date,
  secrets: DemoSecrets,
  options: {
    from?: string;
    /** Filled with each HCP Terraform run's VCS origin, as the runs API tells it (`process` looks it up). */
    terraformRuns?: Map<string, { commitSha: string; repository: string; workingDirectory: string }>;
  } = {},
): DemoDelivery[] {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  const quarterStart = Date.UTC(now.getUTCFullYear(), Math.floor(now.getUTCMonth() / 3) * 3, 1);
  const previousQuarter = new Date(quarterStart);
  previousQuarter.setUTCMonth(previousQuarter.getUTCMonth() - 3);
  const start = options.from !== undefined ? Date.parse(options.from) : previousQuarter.getTime();
  const span = Math.max(DAY, today - start);
  const rand = random(Math.floor(today / DAY));
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;
  const deliveries: DemoDelivery[] = [];
  let shaCounter = 0;
  const sha = () => (++shaCounter).toString(16).padStart(8, '0').repeat(5);
  let guid = 0;
  const hmac = (algorithm: string, secret: string, body: string) =>
    createHmac(algorithm, secret).update(body).digest('hex');
  /** Each source's credentials over a body, as the source itself sends them. */
  const SIGNED: Record<string, (body: string) => Record<string, string>> = {
    '/github': (body) => ({ 'x-hub-signature-256': `sha256=${hmac('sha256', secrets.github, body)}` }),
    '/deployments': () => ({ authorization: `Bearer ${secrets.ci}` }),
    '/terraform': (body) => ({ 'x-tfe-notification-signature': hmac('sha512', secrets.terraform, body) }),
    '/pagerduty': (body) => ({ 'x-pagerduty-signature': `v1=${hmac('sha256', secrets.pagerduty, body)}` }),
  };
  const post = (path: string, payload: unknown, at: number, headers: Record<string, string> = {}) => {
    const body = JSON.stringify(payload);
    deliveries.push({
      path,
      at,
      body,
      headers: { 'content-type': 'application/json', ...headers, ...SIGNED[path]?.(body) },
    });
  };
  const github = (event: string, payload: unknown, at: number) => {
    post('/github', payload, at, {
      'x-github-event': event,
      'x-github-delivery': `demo-${String(Math.floor(today / DAY))}-${String(++guid)}`,
    });
  };

  let deploymentId = 9000;
  let runId = 0;
  let incidentId = 0;
  /** One deploy of a service to an environment, as its source reports it. */
  const deploy = (
    service: Service,
    environment: string,
    commit: string,
    finishedAt: number,
    status: 'success' | 'failure',
    part?: { service: string; folder: string; developers: string[] },
  ) => {
    const startedAt = finishedAt - (4 + rand() * 8) * 60_000;
    const actor = pick(part?.developers ?? service.developers);
    if (service.via === 'ci') {
      post(
        '/deployments',
        {
          service: service.name,
          environment,
          status,
          startedAt: iso(startedAt),
          finishedAt: iso(finishedAt),
          commitSha: commit,
          repository: service.repository,
          actor,
          id: `demo-${service.name}-${String(++runId)}`,
        },
        finishedAt,
      );
    } else if (service.via === 'github') {
      const id = ++deploymentId;
      github(
        'deployment_status',
        {
          action: 'created',
          deployment_status: {
            state: status,
            environment,
            created_at: iso(finishedAt),
            target_url: `https://github.com/${service.repository}/actions/runs/${String(id)}`,
          },
          deployment: { id, sha: commit, created_at: iso(startedAt), creator: { login: actor }, payload: {} },
          repository: { full_name: service.repository, name: service.name },
        },
        finishedAt,
      );
    } else {
      const run = `run-demo${String(++runId).padStart(8, '0')}`;
      const workspace = part?.service ?? service.name;
      // The notification names no commit; the runs API does (configuration version, ingress attributes).
      options.terraformRuns?.set(run, {
        commitSha: commit,
        repository: service.repository,
        workingDirectory: part?.folder ?? '',
      });
      post(
        '/terraform',
        {
          payload_version: 1,
          notification_configuration_id: 'nc-demo',
          run_url: `https://app.terraform.io/app/acme/${workspace}-${environment}/runs/${run}`,
          run_id: run,
          run_message: `Apply ${commit.slice(0, 7)}`,
          run_created_at: iso(startedAt),
          run_created_by: actor,
          workspace_id: `ws-demo-${workspace}`,
          workspace_name: `${workspace}-${environment}`,
          organization_name: 'acme',
          notifications: [
            {
              message: status === 'success' ? 'Apply complete' : 'Apply errored',
              trigger: status === 'success' ? 'run:completed' : 'run:errored',
              run_status: status === 'success' ? 'applied' : 'errored',
              run_updated_at: iso(finishedAt),
              run_updated_by: actor,
            },
          ],
        },
        finishedAt,
      );
    }
  };

  const incident = (service: string, startedAt: number, minutes: number, title: string) => {
    const id = `PDEMO${String(++incidentId).padStart(4, '0')}`;
    const data = (resolved: boolean) => ({
      id,
      type: 'incident',
      html_url: `https://acme.pagerduty.com/incidents/${id}`,
      number: incidentId,
      status: resolved ? 'resolved' : 'triggered',
      title,
      created_at: iso(startedAt),
      service: { id: `PSVC${service.toUpperCase()}`, summary: service, type: 'service_reference' },
      priority: { summary: 'P2' },
      urgency: 'high',
    });
    const resolvedAt = startedAt + minutes * 60_000;
    for (const [type, at] of [
      ['incident.triggered', startedAt],
      ['incident.resolved', resolvedAt],
    ] as const) {
      post(
        '/pagerduty',
        {
          event: {
            id: `${id}-${type}`,
            event_type: type,
            resource_type: 'incident',
            occurred_at: iso(at),
            agent: null,
            client: null,
            data: data(type === 'incident.resolved'),
          },
        },
        at,
      );
    }
  };

  for (const service of SERVICES) {
    let head = sha();
    let deployed = head;
    let pr = 100;
    const pending: Array<{ sha: string; author: string; committedAt: number }> = [];
    /** A monorepo's folders changed since their workspace last applied. */
    const changed = new Set<string>();
    for (let day = start; day <= today; day += DAY) {
      const weekday = new Date(day).getUTCDay();
      if (weekday === 0 || weekday === 6) continue;
      const progress = (day - start) / span;
      const mix = (range: [number, number]) => range[0] + (range[1] - range[0]) * progress;

      // Pull requests merged today: each one push to main.
      const merges = Math.floor(mix(service.deploysPerDay) * (0.8 + rand() * 0.6) + rand());
      for (let m = 0; m < merges; m++) {
        const mergedAt = day + (9 + rand() * 8) * HOUR;
        if (mergedAt > now.getTime()) continue;
        const bot = rand() < 0.12;
        // In a monorepo, the folder this change is in (now and then a shared module: every folder).
        const part = service.parts === undefined ? undefined : pick(service.parts);
        const shared = part !== undefined && rand() < 0.1;
        const folders =
          service.parts === undefined ? [] : shared ? service.parts.map((p) => p.folder) : [part?.folder ?? ''];
        const files = shared ? ['modules/tags/main.tf'] : folders.map((f) => `${f}/main.tf`);
        const author = bot ? pick(BOTS) : pick(part?.developers ?? service.developers);
        const count = bot ? 1 : 1 + Math.floor(rand() * 3);
        const opened = mergedAt - mix(service.hoursToMerge) * HOUR * (0.5 + rand());
        const commits = Array.from({ length: count }, (_, i) => ({
          sha: sha(),
          author,
          committedAt: opened + (i * (mergedAt - opened)) / (count + 1),
        }));
        const mergeSha = commits.at(-1)?.sha ?? sha();
        const number = ++pr;
        github(
          'pull_request',
          {
            action: 'closed',
            number,
            repository: { full_name: service.repository, name: service.name },
            pull_request: {
              number,
              user: { login: author, type: bot ? 'Bot' : 'User' },
              created_at: iso(opened),
              merged: true,
              merged_at: iso(mergedAt),
              merge_commit_sha: mergeSha,
              base: { ref: 'main' },
              head: { sha: mergeSha, ref: `feature/${String(number)}` },
              commits: count,
              title: bot ? 'Bump a dependency' : `Change ${String(number)}`,
              // Now and then a fix-forward labelled as one (deployment rework).
              labels: !bot && number % 23 === 0 ? [{ name: 'hotfix' }] : [],
            },
          },
          mergedAt + 1000,
        );
        // A few pushes reach DevStats late: after the deploy that ships them.
        const late = rand() < 0.05 ? 3 * HOUR : 0;
        github(
          'push',
          {
            ref: 'refs/heads/main',
            before: head,
            after: mergeSha,
            forced: false,
            repository: { full_name: service.repository, name: service.name, pushed_at: Math.floor(mergedAt / 1000) },
            commits: commits.map((c) => ({
              id: c.sha,
              timestamp: iso(c.committedAt),
              // Now and then the change is a revert of the one before (deployment rework).
              ...(files.length > 0 ? { added: [], modified: files, removed: [] } : {}),
              message:
                number % 31 === 0
                  ? `Revert "Change ${String(number - 1)}"\n\nThis reverts commit ${head}.`
                  : `Change ${String(number)}`,
              author: { name: c.author, username: c.author },
            })),
            head_commit: { id: mergeSha },
            pusher: { name: author },
          },
          mergedAt + 2000 + late,
        );
        head = mergeSha;
        pending.push(...commits);
        for (const folder of folders) changed.add(folder);
      }

      if (service.parts !== undefined) {
        // A monorepo's workspaces: each applies the head of main when its folder changed (HCP
        // Terraform's VCS-driven runs), now and then erroring and applied again an hour later.
        for (const part of service.parts) {
          if (!changed.has(part.folder)) continue;
          const at = day + (17 + rand() * 2) * HOUR;
          if (at > now.getTime()) continue;
          if (rand() < 0.07) {
            deploy(service, 'production', head, at, 'failure', part);
            deploy(service, 'production', head, at + HOUR, 'success', part);
          } else deploy(service, 'production', head, at, 'success', part);
          changed.delete(part.folder);
        }
        continue;
      }

      // Deploys: the head of main, through each environment, a few times a day.
      const deploys = Math.floor(mix(service.deploysPerDay) + rand());
      for (let d = 0; d < deploys && head !== deployed; d++) {
        const at = day + (10 + (d * 8) / deploys + rand()) * HOUR;
        if (at > now.getTime()) break;
        const target = head;
        service.environments.forEach((environment, i) => {
          if (environment !== 'production')
            deploy(service, environment, target, at - (service.environments.length - i) * 15 * 60_000, 'success');
        });
        const roll = rand();
        if (roll < 0.07) {
          // It fails, and the retry an hour later restores it.
          deploy(service, 'production', target, at, 'failure');
          deploy(service, 'production', target, at + (0.5 + rand()) * HOUR, 'success');
        } else {
          deploy(service, 'production', target, at, 'success');
        }
        if (roll > 0.97 && deployed !== target) {
          // Rolled back to the sha before: counted as a failed change, restored by the rollback.
          deploy(service, 'production', deployed, at + 40 * 60_000, 'success');
          deploy(service, 'production', target, at + 4 * HOUR, 'success');
        }
        if (rand() < 0.06)
          incident(
            service.name,
            at + (0.5 + rand() * 3) * HOUR,
            20 + rand() * 160,
            `${service.name}: error rate above 2 %`,
          );
        deployed = target;
        pending.length = 0;
      }

      // Now and then a hotfix branch goes straight to production.
      if (service.name === 'billing' && rand() < 0.05) {
        const at = day + 18 * HOUR;
        if (at < now.getTime()) {
          const fix = sha();
          github(
            'push',
            {
              ref: 'refs/heads/hotfix/invoice-rounding',
              before: deployed,
              after: fix,
              forced: false,
              repository: { full_name: service.repository, name: service.name, pushed_at: Math.floor(at / 1000) },
              commits: [
                {
                  id: fix,
                  timestamp: iso(at - HOUR),
                  message: 'Fix invoice rounding',
                  author: { name: 'alice', username: 'alice' },
                },
              ],
              head_commit: { id: fix },
              pusher: { name: 'alice' },
            },
            at,
          );
          deploy(service, 'production', fix, at + 20 * 60_000, 'success');
        }
      }
    }
  }
  // An incident of no deploy: a cloud provider's outage.
  incident('search', today - 9 * DAY + 3 * HOUR, 95, 'search: upstream provider outage');

  // GitHub redelivers now and then (a delivery that timed out): stored once all the same.
  for (const delivery of deliveries.filter((d) => d.path === '/github' && rand() < 0.01))
    deliveries.push({ ...delivery, at: delivery.at + 60_000 });
  return deliveries.sort((a, b) => a.at - b.at);
}

interface DemoResult {
  deliveries: number;
  answers: Record<string, number>;
  stored: number;
  duplicates: number;
  rejected: number;
}

/**
 * Sends each delivery through ingest (with `secrets` as the configured secrets) and each
 * published message through `process`, in order.
 */
export async function runDemo(options: {
  deliveries: readonly DemoDelivery[];
  secrets: DemoSecrets;
  config: Pick<Config, 'maxBodyBytes' | 'rawTopic' | 'projectId'>;
  settings: Settings;
  logger: Logger;
  processMessage: (message: BusMessage) => Promise<ProcessOutcome>;
  onDelivery?: (request: IngestRequest, outcome: Outcome) => void;
}): Promise<DemoResult> {
  const published: BusMessage[] = [];
  const bus: Bus = {
    publish: (_topic, message) => {
      published.push(message);
      return Promise.resolve(String(published.length));
    },
    close: () => Promise.resolve(),
  };
  const secrets = Object.fromEntries(Object.entries(options.secrets).map(([k, v]) => [k, [v]])) as Record<
    WebhookSource,
    string[]
  >;
  const ingest = createIngest({
    // Only the demo's own secrets: not the variables' or files' a caller's configuration carries.
    config: {
      maxBodyBytes: options.config.maxBodyBytes,
      rawTopic: options.config.rawTopic,
      projectId: options.config.projectId,
      secrets,
      secretFiles: {},
      insecureDev: false,
    },
    settings: options.settings,
    bus,
    logger: options.logger,
  });
  const result: DemoResult = { deliveries: 0, answers: {}, stored: 0, duplicates: 0, rejected: 0 };
  for (const delivery of options.deliveries) {
    const request: IngestRequest = {
      method: 'POST',
      path: delivery.path,
      headers: delivery.headers,
      rawBody: Buffer.from(delivery.body),
    };
    const before = published.length;
    const outcome = await ingest(request);
    options.onDelivery?.(request, outcome);
    result.deliveries++;
    result.answers[outcome.reason] = (result.answers[outcome.reason] ?? 0) + 1;
    for (const message of published.splice(before)) {
      const processed = await options.processMessage(message);
      if (processed.outcome === 'rejected') result.rejected++;
      else if (processed.results.every((r) => r.result === 'unchanged')) result.duplicates++;
      else result.stored++;
    }
  }
  return result;
}
