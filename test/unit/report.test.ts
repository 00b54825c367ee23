import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Exporter } from '../../shared/export/exporter.ts';
import { memoryLogger } from '../../shared/log.ts';
import { buildReport, dayRange, previousPeriod, quarter, type Report } from '../../shared/report/figures.ts';
import { renderCsv, renderHtml, renderMarkdown } from '../../shared/report/render.ts';
import { rollup } from '../../shared/pipeline/rollup.ts';
import { BatchingSink } from '../../shared/export/batching-sink.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { RecordingSink } from '../support/recording-sink.ts';
import { deploy, fill, may5, q3, settings } from '../support/report-history.ts';

/** Rollup run as of 23:00 UTC on `day`, every export done first: the series Datadog receives. */
async function gaugesOn(store: SqliteStore, day: string): Promise<RecordingSink['series_']> {
  const recording = new RecordingSink();
  const sink = new BatchingSink(recording);
  for (const d of [...Object.values(q3), may5]) await store.markDeployExported(d.id);
  await store.markShippedExported((await store.unexportedShipped(100)).map((s) => s.id));
  const now = () => new Date(`${day}T23:00:00.000Z`);
  await rollup({
    store,
    sink,
    settings,
    logger: memoryLogger(),
    exporter: new Exporter({ store, sink, settings, logger: memoryLogger(), now }),
    now,
  });
  return recording.series_;
}

const NO_STAGES = {
  commitToMergedP50: null,
  mergedToFirstStageP50: null,
  firstStageToProductionP50: null,
  leadTimeToFirstStageP50: null,
  promotionTimeP50: null,
  straightToProduction: 0,
};

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

  // Developer-days (a commit on day C makes its author active C to C+27): in Q3 alice's Jun 20 commit
  // counts Jul 1–17 (17 days) and her Sep 10 one Sep 10–30 (21), bob's Sep 15 one Sep 15–30 (16): 54.
  test('payments, this quarter: a failure, a rollback, a restore', () => {
    assert.deepEqual(team('payments').current, {
      days: 92,
      activeDevelopers: 2,
      activeDevelopersDailyMean: 54 / 92,
      successfulDeploys: 4,
      deployments: 5,
      deploymentFrequency: 5 / 92,
      deploysPerDeveloperPerDay: 4 / 54,
      leadTimeP50: 7200,
      leadTimeP90: 10800,
      changeFailureRate: (1 + 1) / 5,
      failedDeploymentRecoveryTimeP50: 7200,
      incidentTimeToRestoreP50: null,
      incidents: { total: 0, linked: 0, unlinked: 0 },
      // No stages configured: nothing to say of promotion.
      promotion: NO_STAGES,
      // The rollback to a2 (Sep 21) is the one unplanned deployment of five.
      deploymentReworkRate: 1 / 5,
      rework: [
        {
          deploy: 'ci:5',
          service: 'billing',
          finishedAt: '2026-09-21T12:00:00.000Z',
          rule: 'rollback',
          detail: 'back to a2',
        },
      ],
      // DORA 2024: 5/92 a day is at least monthly (medium); 2 h lead time under a day (elite);
      // 40 % nearest low's 40 %; 2 h recovery under a day (high).
      tiers: {
        deploymentFrequency: 'medium',
        leadTime: 'elite',
        changeFailureRate: 'low',
        failedDeploymentRecoveryTime: 'high',
      },
    });
  });

  test('payments, last quarter', () => {
    // alice's Jun 20 commit: active Jun 20–30, 11 days of Q2.
    assert.deepEqual(team('payments').comparison, {
      days: 91,
      activeDevelopers: 1,
      activeDevelopersDailyMean: 11 / 91,
      successfulDeploys: 1,
      deployments: 1,
      deploymentFrequency: 1 / 91,
      deploysPerDeveloperPerDay: 1 / 11,
      leadTimeP50: 14400,
      leadTimeP90: 14400,
      changeFailureRate: 0,
      failedDeploymentRecoveryTimeP50: null,
      incidentTimeToRestoreP50: null,
      incidents: { total: 0, linked: 0, unlinked: 0 },
      promotion: NO_STAGES,
      deploymentReworkRate: 0,
      rework: [],
      // One deploy in 91 days is less than monthly (low); 4 h lead time (elite); 0 % nearest elite's 5 %.
      tiers: { deploymentFrequency: 'low', leadTime: 'elite', changeFailureRate: 'elite' },
    });
  });

  test('search: the staging deploy counts nowhere; last quarter it had no developers and no deploys', () => {
    // carol's Sep 12 commit: active Sep 12–30, 19 days; the bot counts none.
    assert.deepEqual(team('search').current, {
      days: 92,
      activeDevelopers: 1,
      activeDevelopersDailyMean: 19 / 92,
      successfulDeploys: 1,
      deployments: 1,
      deploymentFrequency: 1 / 92,
      deploysPerDeveloperPerDay: 1 / 19,
      leadTimeP50: 1800,
      leadTimeP90: 1800,
      changeFailureRate: 0,
      failedDeploymentRecoveryTimeP50: null,
      incidentTimeToRestoreP50: null,
      incidents: { total: 0, linked: 0, unlinked: 0 },
      promotion: NO_STAGES,
      deploymentReworkRate: 0,
      rework: [],
      tiers: { deploymentFrequency: 'low', leadTime: 'elite', changeFailureRate: 'elite' },
    });
    assert.equal(team('search').comparison.deploysPerDeveloperPerDay, null);
    assert.equal(team('search').comparison.changeFailureRate, null);
  });

  test('the organisation: bots excluded from the 3 developers', () => {
    const all = team('all').current;
    assert.deepEqual(
      [
        all.activeDevelopers,
        all.activeDevelopersDailyMean,
        all.successfulDeploys,
        all.deployments,
        all.deploysPerDeveloperPerDay,
        all.leadTimeP50,
        all.leadTimeP90,
        all.changeFailureRate,
      ],
      // alice 17 + 21, bob 16, carol 19: 73 developer-days.
      [3, 73 / 92, 5, 6, 5 / 73, 3600, 10800, 2 / 6],
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
      repositoriesWithoutTeam: [],
      silentSources: [],
      incidentsWithoutStart: [],
      commitsWithUnknownFiles: [],
      botAuthorsExcluded: ['dependabot[bot]', 'release-robot'],
      // Days with a deploy (Jul 10, Aug 5, Aug 6, Sep 1, 20, 21) or a commit (Sep 10, 12, 15, 16): 10 of 92.
      daysWithoutData: 92 - 10,
    });
  });

  test('each weekly point equals the 7-day gauge rollup publishes on that day', async () => {
    for (const week of team('payments').weekly) {
      const sent = await gaugesOn(store, week.weekEnding);
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

describe('one figure everywhere (issue 27)', () => {
  const store = new SqliteStore(':memory:');
  before(() => fill(store));
  after(() => store.close());

  test('the quarter in progress, on 2026-09-15: day 77 of 92, against the first 77 days of Q2, the whole of Q2 beside it, no week after today', async () => {
    const period = quarter('2026-Q3');
    const report = await buildReport(store, settings, {
      period,
      comparison: previousPeriod(period),
      now: new Date('2026-09-15T12:00:00Z'),
    });
    assert.deepEqual(
      [report.period, report.comparison, report.comparisonWhole],
      [
        { label: '2026-Q3, day 77 of 92', from: '2026-07-01', to: '2026-09-15' },
        { label: 'the first 77 days of 2026-Q2', from: '2026-04-01', to: '2026-06-16' },
        { label: '2026-Q2', from: '2026-04-01', to: '2026-06-30' },
      ],
    );
    const payments = report.teams.find((t) => t.team === 'payments')!;
    // Up to Sep 15: Jul 10 and Sep 1 (the Sep 1 failure is a deployment, not a success); developer-days
    // alice Jul 1–17 (17) and Sep 10–15 (6), bob Sep 15 (1): 24.
    assert.deepEqual(
      [payments.current.days, payments.current.successfulDeploys, payments.current.deployments],
      [77, 2, 3],
    );
    assert.equal(payments.current.deploysPerDeveloperPerDay, 2 / 24);
    assert.equal(payments.current.deploymentFrequency, 3 / 77);
    // The first 77 days of Q2 hold the May 5 deploy; alice's Jun 20 commit comes after them.
    assert.deepEqual([payments.comparison.successfulDeploys, payments.comparison.deploysPerDeveloperPerDay], [1, null]);
    assert.deepEqual(
      [payments.comparisonWhole?.days, payments.comparisonWhole?.deploysPerDeveloperPerDay],
      [91, 1 / 11],
    );
    // Weeks end on Jul 7 + 7k; the one ending today (Sep 15) has not ended.
    assert.equal(payments.weekly.at(-1)?.weekEnding, '2026-09-08');
    assert.ok(payments.weekly.every((w) => w.weekEnding < '2026-09-15'));
    const markdown = renderMarkdown(report);
    assert.match(markdown, /^# Delivery report: 2026-Q3, day 77 of 92$/m);
    assert.match(
      markdown,
      /\| Figure \| 2026-Q3, day 77 of 92 \| the first 77 days of 2026-Q2 \| Change \| 2026-Q2 \(whole, for reference\) \|/,
    );
  });

  test('the report of any 28 days equals the 28d gauge rollup publishes on its last day', async () => {
    for (const last of ['2026-07-20', '2026-09-05', '2026-09-22', '2026-09-30']) {
      const sent = await gaugesOn(store, last);
      const start = new Date(Date.parse(last) - 27 * 86_400_000).toISOString().slice(0, 10);
      const report = await buildReport(store, settings, {
        period: dayRange(start, last),
        comparison: dayRange('2026-01-01', '2026-01-28'),
        now: new Date('2026-10-01T00:00:00Z'),
      });
      for (const team of report.teams) {
        const gauge = sent.find(
          (p) =>
            p.metric === 'devstats.deploys_per_developer_per_day' &&
            p.tags.includes(`team:${team.team}`) &&
            p.tags.includes('window:28d'),
        );
        assert.equal(team.current.deploysPerDeveloperPerDay, gauge?.value ?? null, `${team.team}, 28 days to ${last}`);
      }
    }
  });

  test('--format csv: one line per team, period and figure, with the HTML report’s numbers', async () => {
    const period = quarter('2026-Q3');
    const report = await buildReport(store, settings, {
      period,
      comparison: previousPeriod(period),
      now: new Date('2026-10-01T00:00:00Z'),
    });
    const lines = renderCsv(report).trimEnd().split('\r\n');
    assert.equal(lines[0], 'team,period,from,to,figure,value,unit,as shown');
    const row = (team: string, period: string, figure: string) =>
      lines.find((l) => l.startsWith(`${team},${period},`) && l.includes(`,${figure},`))?.split(',');
    assert.deepEqual(row('payments', '2026-Q3', 'Deploys per developer per day'), [
      'payments',
      '2026-Q3',
      '2026-07-01',
      '2026-09-30',
      'Deploys per developer per day',
      String(4 / 54),
      '',
      (4 / 54).toFixed(3),
    ]);
    assert.deepEqual(row('payments', '2026-Q3', 'Lead time p50'), [
      'payments',
      '2026-Q3',
      '2026-07-01',
      '2026-09-30',
      'Lead time p50',
      '7200',
      'seconds',
      '2.0 h',
    ]);
    // Every figure the HTML shows for a team and period is in the CSV, as shown.
    const html = renderHtml(report);
    for (const line of lines.slice(1)) {
      const shown = line.split(',').at(-1) ?? '';
      assert.ok(html.includes(shown.replace(' %', '&nbsp;%')) || html.includes(shown), `${line} not in the HTML`);
    }
    // 3 teams (payments, search, all) × 2 periods × (the 13 figures of the headline table + 4 DORA levels).
    assert.equal(lines.length, 1 + 3 * 2 * (13 + 4));
    assert.deepEqual(row('payments', '2026-Q3', 'DORA level: Change failure rate')?.slice(5), ['low', 'level', 'low']);
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
