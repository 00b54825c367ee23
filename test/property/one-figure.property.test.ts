import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Commit, Deploy } from '../../shared/events/model.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { BatchingSink } from '../../shared/export/batching-sink.ts';
import { Exporter } from '../../shared/export/exporter.ts';
import { createLogger } from '../../shared/log.ts';
import { rollup } from '../../shared/pipeline/rollup.ts';
import { asOf, buildReport, dayRange, previousPeriod, quarter } from '../../shared/report/figures.ts';
import { liveReport } from '../../shared/report/live.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { RecordingSink } from '../support/recording-sink.ts';

/*
 * One figure everywhere (issue 27): for random histories (two teams, bots, a headcount override,
 * failures, cancelled and staging deploys) and random periods (a closed quarter, the quarter in
 * progress, 7 and 28 days), the report's figures, the live view's and rollup's gauges agree, and
 * each equals a reference computed here from DESIGN.md's words alone ("A period's figures"), in
 * UTC, with none of the code under test.
 */
const RUNS = Number(process.env.DEVSTATS_PROPERTY_RUNS ?? 25);
const DAY = 86_400_000;
const WINDOW = 28;
const logger = createLogger(() => undefined);

const teamsArb = fc.record({ headcount: fc.option(fc.integer({ min: 1, max: 9 }), { nil: undefined }) });
const commitArb = fc.record({
  author: fc.constantFrom('ann', 'ben', 'cy', 'dee', 'renovate[bot]'),
  repository: fc.constantFrom('acme/billing', 'acme/search'),
  day: fc.integer({ min: 0, max: 250 }),
});
const deployArb = fc.record({
  service: fc.constantFrom('billing', 'search'),
  environment: fc.constantFrom('production', 'production', 'production', 'staging'),
  status: fc.constantFrom('success', 'success', 'failure', 'cancelled'),
  day: fc.integer({ min: 0, max: 250 }),
  minute: fc.integer({ min: 0, max: 1439 }),
});
/** Day 0 is 2026-04-01: Q2 and Q3 and the start of Q4. */
const FIRST = Date.parse('2026-04-01T00:00:00Z');
const dayName = (n: number) => new Date(FIRST + n * DAY).toISOString().slice(0, 10);
const dayNumber = (name: string) => Math.round((Date.parse(name) - FIRST) / DAY);

interface History {
  commits: Array<{ author: string; repository: string; day: number }>;
  deploys: Array<{ service: string; environment: string; status: string; day: number; minute: number }>;
}

/** The reference: Σ successful production deploys of the team ÷ Σ over the days of its active developers. */
function reference(
  history: History,
  team: { repository?: string; service?: string; headcount?: number },
  from: number,
  to: number,
) {
  let developerDays = 0;
  for (let d = from; d <= to; d++) {
    if (team.headcount !== undefined) {
      developerDays += team.headcount;
      continue;
    }
    const authors = new Set(
      history.commits
        .filter((c) => !c.author.endsWith('[bot]'))
        .filter((c) => team.repository === undefined || c.repository === team.repository)
        .filter((c) => c.day <= d && c.day > d - WINDOW)
        .map((c) => c.author),
    );
    developerDays += authors.size;
  }
  const production = history.deploys.filter(
    (x) =>
      x.environment === 'production' &&
      x.status !== 'cancelled' &&
      (team.service === undefined || x.service === team.service) &&
      x.day >= from &&
      x.day <= to,
  );
  const successes = production.filter((x) => x.status === 'success').length;
  return {
    deploysPerDeveloperPerDay: developerDays > 0 ? successes / developerDays : null,
    deploymentFrequency: production.length / (to - from + 1),
    activeDevelopersDailyMean: developerDays / (to - from + 1),
  };
}

test(`${RUNS} random histories and periods: report, live view and rollup gauges agree, and equal the reference`, async () => {
  await fc.assert(
    fc.asyncProperty(
      teamsArb,
      fc.array(commitArb, { maxLength: 30 }),
      fc.array(deployArb, { maxLength: 40 }),
      fc.integer({ min: 100, max: 250 }),
      async (search, commits, deploys, todayNumber) => {
        const settings = parseSettings({
          bots: [],
          teams: {
            payments: { services: ['billing'], repositories: ['acme/billing'] },
            search: {
              services: ['search'],
              repositories: ['acme/search'],
              ...(search.headcount === undefined ? {} : { headcount: search.headcount }),
            },
          },
        });
        const teams = {
          payments: { repository: 'acme/billing', service: 'billing' },
          search: { repository: 'acme/search', service: 'search', headcount: search.headcount },
          all: {},
        };
        const history: History = { commits, deploys };
        const store = new SqliteStore(':memory:');
        try {
          let n = 0;
          for (const c of commits) {
            const commit: Commit = {
              kind: 'commit',
              id: `${c.repository}@c${++n}`,
              repository: c.repository,
              branch: 'main',
              sha: `c${n}`,
              authorLogin: c.author,
              authorName: c.author,
              timestamp: new Date(FIRST + c.day * DAY + 9 * 3600_000).toISOString(),
              isBot: c.author.endsWith('[bot]'),
            };
            await store.putChange(commit);
          }
          for (const d of deploys) {
            const finishedAt = new Date(FIRST + d.day * DAY + d.minute * 60_000).toISOString();
            const deploy: Deploy = {
              kind: 'deploy',
              id: `ci:${d.service}:${++n}`,
              source: 'ci',
              service: d.service,
              environment: d.environment,
              status: d.status,
              startedAt: new Date(Date.parse(finishedAt) - 60_000).toISOString(),
              finishedAt,
              externalId: String(n),
              actor: null,
            };
            await store.putDeploy(deploy, { shipsChanges: false });
            await store.markDeployExported(deploy.id);
          }
          const today = dayName(todayNumber);
          const now = new Date(`${today}T12:00:00.000Z`);
          const check = (
            figures: {
              deploysPerDeveloperPerDay: number | null;
              deploymentFrequency: number;
              activeDevelopersDailyMean: number;
            },
            expected: ReturnType<typeof reference>,
            what: string,
          ) => {
            const close = (a: number | null, b: number | null) =>
              a === null || b === null ? a === b : Math.abs(a - b) < 1e-12;
            assert.ok(
              close(figures.deploysPerDeveloperPerDay, expected.deploysPerDeveloperPerDay),
              `${what}: deploys per developer per day ${figures.deploysPerDeveloperPerDay} ≠ ${expected.deploysPerDeveloperPerDay}`,
            );
            assert.ok(
              close(figures.deploymentFrequency, expected.deploymentFrequency),
              `${what}: deployment frequency`,
            );
            assert.ok(
              close(figures.activeDevelopersDailyMean, expected.activeDevelopersDailyMean),
              `${what}: active developers, daily mean`,
            );
          };

          // A closed quarter (Q2) and the quarter of today, in progress or not.
          const currentQuarter = today < '2026-07-01' ? '2026-Q2' : today < '2026-10-01' ? '2026-Q3' : '2026-Q4';
          for (const label of ['2026-Q2', currentQuarter]) {
            const period = quarter(label);
            const report = await buildReport(store, settings, { period, comparison: previousPeriod(period), now });
            const shown = asOf(period, previousPeriod(period), today).period;
            for (const team of report.teams) {
              const spec = teams[team.team as keyof typeof teams];
              check(
                team.current,
                reference(history, spec, dayNumber(shown.from), dayNumber(shown.to)),
                `${team.team} ${report.period.label}`,
              );
              assert.ok(
                team.weekly.every((w) => w.weekEnding < today),
                'no week that has not ended',
              );
            }
          }
          // The live view's "so far" is the report of the same days.
          const live = await liveReport(store, settings, now);
          const same = await buildReport(store, settings, {
            period: dayRange(live.period.from, live.period.to),
            comparison: live.comparison,
            now,
          });
          for (const [i, team] of live.teams.entries())
            assert.deepEqual(team.current, same.teams[i]?.current, `live ${team.team}`);

          // Rollup's 7d and 28d gauges on today are the reports of those days, and the reference.
          const recording = new RecordingSink();
          const sink = new BatchingSink(recording);
          await rollup({
            store,
            sink,
            settings,
            logger,
            exporter: new Exporter({ store, sink, settings, logger, now: () => now }),
            now: () => now,
          });
          for (const days of [7, 28]) {
            const report = await buildReport(store, settings, {
              period: dayRange(dayName(todayNumber - days + 1), today),
              comparison: dayRange('2026-01-01', '2026-01-07'),
              now: new Date(`${dayName(todayNumber + 1)}T12:00:00.000Z`),
            });
            for (const team of report.teams) {
              const gauge = recording.series_.find(
                (p) =>
                  p.metric === 'devstats.deploys_per_developer_per_day' &&
                  p.tags.includes(`team:${team.team}`) &&
                  p.tags.includes(`window:${days}d`),
              );
              assert.equal(gauge?.value ?? null, team.current.deploysPerDeveloperPerDay, `${team.team} ${days}d gauge`);
              const spec = teams[team.team as keyof typeof teams];
              check(
                team.current,
                reference(history, spec, todayNumber - days + 1, todayNumber),
                `${team.team} ${days} days`,
              );
            }
          }
        } finally {
          await store.close();
        }
      },
    ),
    { numRuns: RUNS, seed: Number(process.env.DEVSTATS_PROPERTY_SEED ?? 20261206) },
  );
});
