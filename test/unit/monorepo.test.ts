import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { parseSettings } from '../../shared/events/settings.ts';
import { memoryLogger } from '../../shared/log.ts';
import { enrichersFor } from '../../shared/pipeline/enrich.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { buildReport, dayRange, type Report } from '../../shared/report/figures.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { ciDeployment, githubPush, terraformNotification } from '../support/fixtures.ts';

/*
 * One Terraform repository, acme/infra, three services owned by paths, two teams (issue 28),
 * worked out by hand (2026-11-20, UTC):
 *   payments: billing  terraform/billing/**          checkout  terraform/checkout/**, modules/payments/**
 *   platform: network  terraform/network/**, modules/vpc/**
 *   07:00 c0 erin   README.md                                     no service's
 *   08:00 billing, checkout and network deploy c0 (each one's first deploy: ships nothing of theirs)
 *   09:00 c1 alice  terraform/billing/main.tf                     billing
 *   09:10 c2 bob    terraform/network/vpc.tf                      network
 *   09:20 c3 carol  modules/payments/a.tf, modules/vpc/b.tf       checkout and network: two teams
 *   09:30 c4 dave   a push that lists no files (truncated)        unknown: every service, a finding
 *   10:00 billing deploys c4:  c1 1 h, c4 30 min
 *   10:30 network deploys c4:  c2 80 min, c3 70 min, c4 60 min
 *   11:00 checkout deploys c4: c3 100 min, c4 90 min
 * Lead time p50 (nearest rank): payments {30, 60, 90, 100 min} → 60 min; platform {60, 70, 80} → 70;
 * all, the seven of them {30, 60, 60, 70, 80, 90, 100} → 70.
 * Active developers: payments alice, carol, dave (3); platform bob, carol, dave (3); all five.
 * Deploys per developer per day: payments 4 / 3; platform 2 / 3; all 6 / 5.
 * Before path rules, every commit was every service's, and each team had all five developers.
 */
const settings = parseSettings({
  teams: {
    payments: {
      services: [
        { name: 'billing', repository: 'acme/infra', paths: ['terraform/billing/**'] },
        { name: 'checkout', repository: 'acme/infra', paths: ['terraform/checkout/**', 'modules/payments/**'] },
      ],
    },
    platform: {
      services: [{ name: 'network', repository: 'acme/infra', paths: ['terraform/network/**', 'modules/vpc/**'] }],
    },
  },
});
const at = (hhmm: string) => `2026-11-20T${hhmm}:00.000Z`;
const sha = (n: number) => n.toString(16).padStart(40, 'd');

let previous = '0'.repeat(40);
function push(n: number, author: string, time: string, files: string[] | undefined): Record<string, unknown> {
  const body = githubPush();
  const after = sha(n);
  const commit: Record<string, unknown> = {
    id: after,
    message: `change ${String(n)}`,
    timestamp: at(time),
    author: { name: author, email: `${author}@acme.test`, username: author },
  };
  if (files !== undefined) Object.assign(commit, { added: [], modified: files, removed: [] });
  Object.assign(body, { ref: 'refs/heads/main', before: previous, after, forced: false, commits: [commit] });
  Object.assign(body.repository as Record<string, unknown>, {
    full_name: 'acme/infra',
    pushed_at: Date.parse(at(time)) / 1000,
  });
  previous = after;
  return body;
}
const deploy = (service: string, commit: string, time: string) =>
  ciDeployment({
    id: `${service}-${time}`,
    service,
    repository: 'acme/infra',
    commitSha: commit,
    startedAt: new Date(Date.parse(at(time)) - 120_000).toISOString(),
    finishedAt: at(time),
  });

/** The day's deliveries, in order (built afresh each time: each push chains to the one before). */
function history(): Array<[string, string, Record<string, unknown>]> {
  previous = '0'.repeat(40);
  return [
    ['github', 'push', push(0, 'erin', '07:00', ['README.md'])],
    ['ci', 'deployment', deploy('billing', sha(0), '08:00')],
    ['ci', 'deployment', deploy('checkout', sha(0), '08:00')],
    ['ci', 'deployment', deploy('network', sha(0), '08:00')],
    ['github', 'push', push(1, 'alice', '09:00', ['terraform/billing/main.tf'])],
    ['github', 'push', push(2, 'bob', '09:10', ['terraform/network/vpc.tf'])],
    ['github', 'push', push(3, 'carol', '09:20', ['modules/payments/a.tf', 'modules/vpc/b.tf'])],
    ['github', 'push', push(4, 'dave', '09:30', undefined)],
    ['ci', 'deployment', deploy('billing', sha(4), '10:00')],
    ['ci', 'deployment', deploy('network', sha(4), '10:30')],
    ['ci', 'deployment', deploy('checkout', sha(4), '11:00')],
  ];
}

async function deliver(store: SqliteStore, processMessage: ReturnType<typeof createProcessor>) {
  for (const [i, [source, eventType, body]] of history().entries()) {
    const outcome = await processMessage({
      data: Buffer.from(JSON.stringify(body)),
      attributes: { source, eventType, deliveryId: `m${String(i)}`, receivedAt: '2026-11-20T12:00:00.000Z' },
    });
    assert.equal(outcome.outcome, 'stored', `${source} ${eventType} #${String(i)}: ${JSON.stringify(outcome)}`);
  }
  return buildReport(store, settings, {
    period: dayRange('2026-11-20', '2026-11-20'),
    comparison: dayRange('2026-11-19', '2026-11-19'),
    now: new Date('2026-11-21T08:00:00Z'),
  });
}

describe('services owned by paths: one Terraform repository, three services, two teams (issue 28)', () => {
  const store = new SqliteStore(':memory:');
  let report: Report;
  before(async () => {
    report = await deliver(store, createProcessor({ store, settings, logger: memoryLogger() }));
  });
  after(() => store.close());
  const team = (name: string) => report.teams.find((t) => t.team === name)!.current;

  test("each deploy's lead times count only the commits that touched its service's paths (files unknown: kept)", async () => {
    const shipped = await store.shippedBetween(at('00:00'), '2026-11-21T00:00:00.000Z');
    const byService = (service: string) =>
      shipped
        .filter((s) => s.service === service)
        .map((s) => [s.sha, s.leadTimeSeconds])
        .sort();
    assert.deepEqual(byService('billing'), [
      [sha(1), 3600],
      [sha(4), 1800],
    ]);
    assert.deepEqual(byService('network'), [
      [sha(2), 4800],
      [sha(3), 4200],
      [sha(4), 3600],
    ]);
    assert.deepEqual(byService('checkout'), [
      [sha(3), 6000],
      [sha(4), 5400],
    ]);
  });

  test("each team's lead time, active developers and deploys per developer per day equal the hand figures", () => {
    assert.deepEqual(
      ['payments', 'platform', 'all'].map((t) => [
        team(t).leadTimeP50,
        team(t).activeDevelopers,
        team(t).successfulDeploys,
        team(t).deploysPerDeveloperPerDay,
      ]),
      [
        [3600, 3, 4, 4 / 3],
        [4200, 3, 2, 2 / 3],
        [4200, 5, 6, 6 / 5],
      ],
    );
  });

  test('the truncated push is a data-quality finding, not a silent guess', () => {
    assert.deepEqual(report.dataQuality.commitsWithUnknownFiles, [`acme/infra@${sha(4)}`]);
    assert.deepEqual(report.dataQuality.repositoriesWithoutTeam, []);
  });
});

/** A local server that answers like GitHub's commits API and HCP Terraform's runs API. */
async function fakeApis(routes: Record<string, unknown>) {
  const seen: string[] = [];
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    seen.push(`${req.headers.authorization ?? ''} ${path}`);
    const body = routes[path];
    res.writeHead(body === undefined ? 404 : 200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body ?? { message: 'Not Found' }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
  return {
    url,
    seen,
    stop: () =>
      new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      ),
  };
}

describe('what a delivery leaves out, looked up at process time (issue 28)', () => {
  test("a truncated push's files from GitHub's commits API: the commit is billing's alone", async () => {
    const api = await fakeApis({
      [`/repos/acme/infra/commits/${sha(4)}`]: { sha: sha(4), files: [{ filename: 'terraform/billing/rates.tf' }] },
    });
    const store = new SqliteStore(':memory:');
    try {
      const enrichers = enrichersFor({
        backfill: { tfcToken: undefined, tfcUrl: api.url } as never,
        github: { token: 'gh-token', apiUrl: api.url, hooks: undefined },
      });
      const report = await deliver(store, createProcessor({ store, settings, logger: memoryLogger(), enrichers }));
      assert.ok(api.seen.includes(`Bearer gh-token /repos/acme/infra/commits/${sha(4)}`), api.seen.join('\n'));
      assert.deepEqual(report.dataQuality.commitsWithUnknownFiles, []);
      const shipped = await store.shippedBetween(at('00:00'), '2026-11-21T00:00:00.000Z');
      assert.deepEqual(
        shipped.filter((s) => s.sha === sha(4)).map((s) => s.service),
        ['billing'],
      );
      // dave touched billing only: payments 3 (alice, carol, dave), platform 2 (bob, carol).
      assert.deepEqual(
        report.teams.map((t) => [t.team, t.current.activeDevelopers]),
        [
          ['payments', 3],
          ['platform', 2],
          ['all', 5],
        ],
      );
    } finally {
      await store.close();
      await api.stop();
    }
  });

  test("an HCP Terraform run without a sha: its ingress attributes give the sha and repository, its workspace's working directory the service's paths; a CLI-driven run stays without a sha", async () => {
    const tfc = await fakeApis({
      '/api/v2/runs/run-vcs': {
        data: { id: 'run-vcs', type: 'runs' },
        included: [
          { id: 'cv-1', type: 'configuration-versions', attributes: { source: 'github' } },
          {
            id: 'ia-1',
            type: 'ingress-attributes',
            attributes: { 'commit-sha': sha(9), branch: 'main', identifier: 'acme/infra' },
          },
          {
            id: 'ws-1',
            type: 'workspaces',
            attributes: { name: 'dns-production', 'working-directory': '/terraform/dns/' },
          },
        ],
      },
      '/api/v2/runs/run-cli': {
        data: { id: 'run-cli', type: 'runs' },
        included: [
          { id: 'cv-2', type: 'configuration-versions', attributes: { source: 'tfe-api' } },
          { id: 'ws-1', type: 'workspaces', attributes: { name: 'dns-production', 'working-directory': '' } },
        ],
      },
    });
    const dns = parseSettings({
      teams: { platform: { services: ['dns'] } },
      terraform: { workspaces: { 'dns-production': { service: 'dns', environment: 'production' } } },
    });
    const store = new SqliteStore(':memory:');
    try {
      const enrichers = enrichersFor({
        backfill: { tfcToken: 'tfc-token', tfcUrl: tfc.url } as never,
        github: { token: undefined, apiUrl: undefined, hooks: undefined },
      });
      const processMessage = createProcessor({ store, settings: dns, logger: memoryLogger(), enrichers });
      for (const run of ['run-vcs', 'run-cli']) {
        const body = terraformNotification();
        Object.assign(body, { run_id: run, workspace_name: 'dns-production' });
        const outcome = await processMessage({
          data: Buffer.from(JSON.stringify(body)),
          attributes: {
            source: 'terraform',
            eventType: 'run:completed',
            deliveryId: run,
            receivedAt: '2026-11-22T10:05:00.000Z',
          },
        });
        assert.equal(outcome.outcome, 'stored');
      }
      assert.ok(
        tfc.seen.every((s) => s.startsWith('Bearer tfc-token /api/v2/runs/')),
        tfc.seen.join('\n'),
      );
      const deploys = await store.events({ kind: 'deploy' });
      const byRun = Object.fromEntries(
        deploys.map((d) => [
          d.kind === 'deploy' ? d.externalId : '',
          d.kind === 'deploy' ? [d.commitSha, d.repository, d.paths] : [],
        ]),
      );
      assert.deepEqual(byRun, {
        'run-vcs': [sha(9), 'acme/infra', ['terraform/dns/**']],
        'run-cli': [undefined, undefined, undefined],
      });
    } finally {
      await store.close();
      await tfc.stop();
    }
  });
});
