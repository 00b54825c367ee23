import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Exporter } from '../../shared/export/exporter.ts';
import { memoryLogger } from '../../shared/log.ts';
import { buildReport, previousPeriod, quarter, type Report } from '../../shared/report/figures.ts';
import { renderHtml, renderMarkdown } from '../../shared/report/render.ts';
import { rollup } from '../../shared/pipeline/rollup.ts';
import { BatchingSink } from '../../shared/export/batching-sink.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { deploy, fill, may5, q3, settings } from '../support/report-history.ts';

describe('devstats report: golden figures', () => {
  const store = new SqliteStore(':memory:');
  let report: Report;
  before(async () => {
    await fill(store);
    const period = quarter('2026-Q3');
    report = await buildReport(store, settings, {
      period,
      comparison: previousPeriod(period),
      now: new Date('2026-10-01T00:00:00Z'),
    });
  });
  after(() => store.close());
  const team = (name: string) => report.teams.find((t) => t.team === name)!;

  test('periods: 2026-Q3 against 2026-Q2', () => {
    assert.deepEqual(
      [report.period, report.comparison],
      [
        { label: '2026-Q3', from: '2026-07-01', to: '2026-09-30' },
        { label: '2026-Q2', from: '2026-04-01', to: '2026-06-30' },
      ],
    );
  });

  test('payments, this quarter: a failure, a rollback, a restore', () => {
    assert.deepEqual(team('payments').current, {
      activeDevelopers: 2,
      successfulDeploys: 4,
      deployments: 5,
      deploymentFrequency: 5 / 92,
      deploysPerDeveloperPerDay: 4 / 92 / 2,
      leadTimeP50: 7200,
      leadTimeP90: 10800,
      changeFailureRate: (1 + 1) / 5,
      timeToRestoreP50: 7200,
      incidents: { total: 0, linked: 0, unlinked: 0 },
    });
  });

  test('payments, last quarter', () => {
    assert.deepEqual(team('payments').comparison, {
      activeDevelopers: 1,
      successfulDeploys: 1,
      deployments: 1,
      deploymentFrequency: 1 / 91,
      deploysPerDeveloperPerDay: 1 / 91,
      leadTimeP50: 14400,
      leadTimeP90: 14400,
      changeFailureRate: 0,
      timeToRestoreP50: null,
      incidents: { total: 0, linked: 0, unlinked: 0 },
    });
  });

  test('search: the staging deploy counts nowhere; last quarter it had no developers and no deploys', () => {
    assert.deepEqual(team('search').current, {
      activeDevelopers: 1,
      successfulDeploys: 1,
      deployments: 1,
      deploymentFrequency: 1 / 92,
      deploysPerDeveloperPerDay: 1 / 92,
      leadTimeP50: 1800,
      leadTimeP90: 1800,
      changeFailureRate: 0,
      timeToRestoreP50: null,
      incidents: { total: 0, linked: 0, unlinked: 0 },
    });
    assert.equal(team('search').comparison.deploysPerDeveloperPerDay, null);
    assert.equal(team('search').comparison.changeFailureRate, null);
  });

  test('the organisation: bots excluded from the 3 developers', () => {
    const all = team('all').current;
    assert.deepEqual(
      [
        all.activeDevelopers,
        all.successfulDeploys,
        all.deployments,
        all.deploysPerDeveloperPerDay,
        all.leadTimeP50,
        all.leadTimeP90,
        all.changeFailureRate,
      ],
      [3, 5, 6, 5 / 92 / 3, 3600, 10800, 2 / 6],
    );
  });

  test('what moved and how far to trust it', () => {
    assert.deepEqual(
      report.movers.byDeploys.map((m) => [m.service, m.deploys.change]),
      [
        ['billing', 3],
        ['search', 1],
      ],
    );
    assert.deepEqual(
      report.movers.byLeadTime.map((m) => [m.service, m.leadTimeP50.change]),
      [['billing', 7200 - 14400]],
    );
    assert.deepEqual(report.dataQuality, {
      deploysBySource: { ci: 7 },
      commits: 5,
      mergedPullRequests: 0,
      deploysWithoutCommitSha: 2,
      deploysDatedInTheFuture: 0,
      commitsDatedAfterTheirDeploy: 0,
      servicesWithoutTeam: [],
      botAuthorsExcluded: ['dependabot[bot]', 'release-robot'],
      // Days with a deploy (Jul 10, Aug 5, Aug 6, Sep 1, 20, 21) or a commit (Sep 10, 12, 15, 16): 10 of 92.
      daysWithoutData: 92 - 10,
    });
  });

  test('each weekly point equals the 7-day gauge rollup publishes on that day', async () => {
    const recording = new RecordingSink();
    const sent = recording.series_;
    const sink = new BatchingSink(recording);
    for (const d of [...Object.values(q3), may5]) await store.markDeployExported(d.id);
    await store.markShippedExported((await store.unexportedShipped(100)).map((s) => s.id));
    for (const week of team('payments').weekly) {
      sent.length = 0;
      const now = () => new Date(`${week.weekEnding}T23:00:00.000Z`);
      await rollup({
        store,
        sink,
        settings,
        logger: memoryLogger(),
        exporter: new Exporter({ store, sink, settings, logger: memoryLogger(), now }),
        now,
      });
      const gauge = sent.find(
        (p) =>
          p.metric === 'devstats.deploys_per_developer_per_day' &&
          p.tags.includes('team:payments') &&
          p.tags.includes('window:7d'),
      );
      assert.equal(gauge?.value ?? null, week.deploysPerDeveloperPerDay, week.weekEnding);
    }
    assert.equal(
      team('payments').weekly.find((w) => w.weekEnding === '2026-09-22')?.deploysPerDeveloperPerDay,
      2 / 7 / 2,
    );
  });

  test('Markdown and HTML carry the same figures, with no NaN or Infinity', () => {
    const md = renderMarkdown(report);
    const html = renderHtml(report);
    for (const text of [md, html]) {
      assert.doesNotMatch(text, /NaN|Infinity|undefined/);
      assert.match(text, /Change failure rate/);
      assert.match(text, /40\.0 %/); // payments' change failure rate
    }
    assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/, 'self-contained: no script, no external asset');
  });
});

describe('devstats report: edge cases are clear, never a crash or a NaN', () => {
  test('an empty quarter, a single deploy, a team with no developers', async () => {
    const store = new SqliteStore(':memory:');
    try {
      const empty = await buildReport(store, settings, { period: quarter('2025-Q1'), comparison: quarter('2024-Q4') });
      for (const text of [renderMarkdown(empty), renderHtml(empty), JSON.stringify(empty)])
        assert.doesNotMatch(text, /NaN|Infinity/);
      assert.match(renderHtml(empty), /no data in this period/);
      await store.putDeploy(deploy('billing', '2025-02-02T12:00:00.000Z'), { shipsChanges: false });
      const single = await buildReport(store, settings, { period: quarter('2025-Q1'), comparison: quarter('2024-Q4') });
      const payments = single.teams.find((t) => t.team === 'payments')!;
      assert.deepEqual(
        [payments.current.successfulDeploys, payments.current.deploysPerDeveloperPerDay, payments.current.leadTimeP50],
        [1, null, null],
      );
      assert.doesNotMatch(renderMarkdown(single), /NaN|Infinity/);
    } finally {
      await store.close();
    }
  });

  test('an unknown team is named in the error', async () => {
    const store = new SqliteStore(':memory:');
    await assert.rejects(
      buildReport(store, settings, { period: quarter('2026-Q3'), comparison: quarter('2026-Q2'), teams: ['ghosts'] }),
      /no such team: ghosts/,
    );
    await store.close();
  });
});
