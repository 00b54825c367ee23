import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Commit, Deploy, PullRequest } from '../../shared/events/model.ts';
import { Exporter } from '../../shared/export/exporter.ts';
import { memoryLogger } from '../../shared/log.ts';
import { startOfDay, windowEndingOn } from '../../shared/metrics/definitions.ts';
import { rollup } from '../../shared/pipeline/rollup.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { FakeDatadog } from '../support/datadog-server.ts';

/*
 * A known history, worked out by hand. Reporting time zone New York: on 2026-11-21T03:00Z it is
 * still 2026-11-20 there (22:00), so "today" is the 20th, from 05:00Z to 05:00Z the next day; the
 * 28-day developer window starts on 2026-10-24 at local midnight, 04:00Z (daylight saving time
 * still ran then).
 */
const NOW = new Date('2026-11-21T03:00:00.000Z');
const settings = parseSettings({
  timezone: 'America/New_York',
  bots: ['release-robot'],
  teams: {
    payments: { services: ['billing', 'checkout'], repositories: ['acme/billing', 'acme/checkout'] },
    search: { services: ['search'], repositories: ['acme/search'] },
    platform: { services: ['network'], repositories: ['acme/infra'], headcount: 4 },
  },
});

let n = 0;
function deploy(service: string, finishedAt: string, overrides: Partial<Deploy> = {}): Deploy {
  n++;
  return {
    kind: 'deploy',
    id: `ci:${n}`,
    source: 'ci',
    service,
    environment: 'production',
    status: 'success',
    startedAt: new Date(Date.parse(finishedAt) - 60_000).toISOString(),
    finishedAt,
    externalId: String(n),
    actor: null,
    ...overrides,
  };
}
function commit(login: string, repository: string, timestamp: string, branch = 'main'): Commit {
  n++;
  return {
    kind: 'commit',
    id: `${repository}@${n}`,
    repository,
    branch,
    sha: String(n),
    authorLogin: login,
    authorName: login,
    timestamp,
    isBot: login.endsWith('[bot]'),
  };
}
const erinsPullRequest: PullRequest = {
  kind: 'pull_request',
  id: 'acme/search#5',
  repository: 'acme/search',
  number: 5,
  authorLogin: 'erin',
  isBot: false,
  createdAt: '2026-11-01T10:00:00.000Z',
  mergedAt: '2026-11-02T10:00:00.000Z',
  mergeCommitSha: 'e5',
  baseRef: 'main',
  headSha: 'e4',
  commits: 2,
};

const deploys: Deploy[] = [
  deploy('billing', '2026-11-20T04:30:00.000Z', { commitSha: 'b1' }), // local 19th, 23:30: 7d and 28d, not 1d
  deploy('billing', '2026-11-20T06:00:00.000Z', { commitSha: 'b2' }), // local 20th, 01:00; rolled back below
  deploy('billing', '2026-11-21T04:30:00.000Z', { commitSha: 'b1' }), // local 20th, 23:30 (UTC's 21st): back to b1
  deploy('checkout', '2026-11-18T15:00:00.000Z'),
  deploy('checkout', '2026-11-20T12:00:00.000Z', { status: 'failure' }),
  deploy('search', '2026-11-20T10:00:00.000Z'),
  deploy('search', '2026-11-20T11:00:00.000Z', { environment: 'staging' }),
  deploy('network', '2026-11-10T12:00:00.000Z'),
  deploy('network', '2026-11-20T13:00:00.000Z', { status: 'cancelled' }),
  deploy('billing', '2026-10-20T12:00:00.000Z'), // before every window
];
const commits: Commit[] = [
  commit('alice', 'acme/billing', '2026-11-19T10:00:00.000Z'),
  commit('alice', 'acme/search', '2026-11-19T11:00:00.000Z'), // alice works in two teams
  commit('bob', 'acme/billing', '2026-11-05T10:00:00.000Z'),
  commit('carol', 'acme/checkout', '2026-11-12T10:00:00.000Z'),
  commit('gina', 'acme/checkout', '2026-10-24T04:30:00.000Z'), // just inside the window
  commit('frank', 'acme/checkout', '2026-10-24T03:30:00.000Z'), // just outside it
  commit('dependabot[bot]', 'acme/billing', '2026-11-19T12:00:00.000Z'),
  commit('release-robot', 'acme/search', '2026-11-19T12:00:00.000Z'),
  commit('dave', 'acme/search', '2026-11-19T12:00:00.000Z', 'feature-x'), // not a default branch
];

describe('days in the reporting time zone', () => {
  test('local midnight, across daylight saving', () => {
    assert.equal(startOfDay('2026-11-20', 'America/New_York').toISOString(), '2026-11-20T05:00:00.000Z');
    assert.equal(startOfDay('2026-10-24', 'America/New_York').toISOString(), '2026-10-24T04:00:00.000Z');
    assert.equal(startOfDay('2026-03-29', 'Europe/Berlin').toISOString(), '2026-03-28T23:00:00.000Z');
    assert.deepEqual(windowEndingOn('2026-11-20', 7, 'UTC'), {
      from: '2026-11-14T00:00:00.000Z',
      to: '2026-11-21T00:00:00.000Z',
    });
  });
});

describe('rollup of a known history: the gauges Datadog receives', () => {
  const dd = new FakeDatadog();
  const store = new SqliteStore(':memory:');
  before(async () => {
    await dd.start();
    for (const d of deploys) await store.putDeploy(d, { shipsChanges: false });
    for (const c of commits) await store.putChange(c);
    await store.putChange(erinsPullRequest);
    // Already exported: this test is about the gauges.
    for (const d of deploys) await store.markDeployExported(d.id);
    const logger = memoryLogger();
    const sink = dd.sink(logger, { retries: 0, backoffMs: 1 });
    const exporter = new Exporter({ store, sink, settings, logger, now: () => NOW });
    await rollup({ store, sink, exporter, settings, logger, now: () => NOW });
  });
  after(async () => {
    await dd.stop();
    await store.close();
  });

  function gauges(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const body of dd.bodies('/api/v1/series') as Array<{
      series: Array<{ metric: string; type: string; points: Array<[number, number]>; tags: string[] }>;
    }>) {
      for (const s of body.series) {
        assert.equal(s.type, 'gauge');
        assert.deepEqual(
          s.points.map(([t]) => t),
          [NOW.getTime() / 1000],
        );
        out[`${s.metric} ${s.tags.join(',')}`] = s.points[0]![1];
      }
    }
    return out;
  }

  test('active developers: bots, feature branches and authors outside the 28 days excluded; alice in two teams; headcount wins', () => {
    const g = gauges();
    assert.deepEqual(
      ['payments', 'search', 'platform', 'all'].map((t) => g[`devstats.developers.active team:${t}`]),
      [4, 2, 4, 5], // payments: alice bob carol gina; search: alice erin; platform: headcount; all: alice bob carol gina erin
    );
  });

  test('deploys per developer per day, 1d/7d/28d', () => {
    const g = gauges();
    const figure = (team: string, window: string) =>
      g[`devstats.deploys_per_developer_per_day team:${team},window:${window}`];
    // A period's figure is Σ deploys ÷ Σ each day's active developers (a commit on local day C makes
    // its author active C to C+27). payments: gina (Oct 24) is active Oct 24–Nov 20, frank (Oct 23)
    // Oct 24–Nov 19, bob Nov 5–, carol Nov 12–, alice Nov 19–. On the 20th: 4 developers, 2 deploys.
    // Nov 14–20: 4 a day, 5 on the 19th: 29 developer-days, 4 deploys. Oct 24–Nov 20:
    // 28 + 27 + 16 + 9 + 2 = 82, 4 deploys.
    assert.deepEqual(
      [figure('payments', '1d'), figure('payments', '7d'), figure('payments', '28d')],
      [2 / 4, 4 / 29, 4 / 82],
    );
    // search: 1 deploy (the staging one does not count); erin (merged Nov 2) and alice (Nov 19):
    // 2 on the 20th, 7 + 2 = 9 in 7 days, 19 + 2 = 21 in 28.
    assert.deepEqual([figure('search', '1d'), figure('search', '7d'), figure('search', '28d')], [1 / 2, 1 / 9, 1 / 21]);
    // platform: the cancelled deploy counts nowhere; headcount 4 every day
    assert.deepEqual(
      [figure('platform', '1d'), figure('platform', '7d'), figure('platform', '28d')],
      [0, 0, 1 / (28 * 4)],
    );
    // all: 3, 5 and 6 deploys; 5 developers on the 20th; 7 + 6 + 7 + 7 + 2 + 7 = 36 developer-days
    // in 7 days (gina, frank, bob, carol, alice, erin), 28 + 27 + 16 + 9 + 2 + 19 = 101 in 28.
    assert.deepEqual([figure('all', '1d'), figure('all', '7d'), figure('all', '28d')], [3 / 5, 5 / 36, 6 / 101]);
  });

  test('change failure rate over 28 days: a failure and a rollback', () => {
    const g = gauges();
    // payments: 5 deployments (4 successes, 1 failure); billing b2 was rolled back to b1: (1 + 1) / 5
    assert.equal(g['devstats.change_failure_rate team:payments,window:28d'], 2 / 5);
    assert.equal(g['devstats.change_failure_rate team:search,window:28d'], 0);
    assert.equal(g['devstats.change_failure_rate team:platform,window:28d'], 0);
    assert.equal(g['devstats.change_failure_rate team:all,window:28d'], 2 / 7);
  });

  test('deployment rework rate over 28 days: the rollback is the one unplanned deployment', () => {
    const g = gauges();
    // payments: the rollback of billing b2 to b1, of 5 deployments; nothing reverted or hotfixed.
    assert.equal(g['devstats.rework_rate team:payments,window:28d'], 1 / 5);
    assert.equal(g['devstats.rework_rate team:search,window:28d'], 0);
    assert.equal(g['devstats.rework_rate team:platform,window:28d'], 0);
    assert.equal(g['devstats.rework_rate team:all,window:28d'], 1 / 7);
  });

  test('all gauges go in one request', () => {
    assert.equal(dd.bodies('/api/v1/series').length, 1);
    // Per team (4): active developers, 3 windows of deploys per developer per day, change failure and rework rates.
    assert.equal(Object.keys(gauges()).length, 4 + 4 * 3 + 4 + 4);
  });
});
