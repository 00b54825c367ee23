import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Deploy } from '../../shared/events/model.ts';
import { Exporter } from '../../shared/export/exporter.ts';
import { memoryLogger } from '../../shared/log.ts';
import { activeDevelopers, addDays, dayOf, startOfDay, teamScopes } from '../../shared/metrics/definitions.ts';
import { changeFailureRate } from '../../shared/metrics/failures.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { rollup } from '../../shared/pipeline/rollup.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { deployMessage, pushMessage, ZERO } from '../support/history.ts';
import { RecordingSink } from '../support/recording-sink.ts';

describe('days in the reporting time zone (issue 11)', () => {
  const zones = [
    'UTC',
    'Europe/Berlin',
    'America/New_York',
    'America/Santiago', // daylight saving starts at midnight: no 00:00 that day
    'America/Havana', // the same
    'Asia/Tehran',
    'Australia/Lord_Howe', // a 30-minute shift
    'Pacific/Apia',
    'Asia/Kolkata',
    'Africa/Cairo',
  ];
  for (const zone of zones) {
    test(`${zone}: each day of 2025 and 2026 starts at its first instant, and the day before ends just before`, () => {
      for (let day = '2025-01-01'; day <= '2026-12-31'; day = addDays(day, 1)) {
        const start = startOfDay(day, zone);
        assert.equal(dayOf(start, zone), day, `${zone} ${day} starts on ${start.toISOString()}`);
        assert.equal(
          dayOf(new Date(start.getTime() - 1), zone),
          addDays(day, -1),
          `${zone} ${day}: the instant before`,
        );
      }
    });
  }

  test('where midnight does not exist, the day starts at 01:00', () => {
    assert.equal(startOfDay('2025-09-07', 'America/Santiago').toISOString(), '2025-09-07T04:00:00.000Z');
    assert.equal(startOfDay('2025-03-09', 'America/Havana').toISOString(), '2025-03-09T05:00:00.000Z');
  });
});

let n = 0;
function deploy(sha: string | undefined, finishedAt: string, overrides: Partial<Deploy> = {}): Deploy {
  n++;
  return {
    kind: 'deploy',
    id: `ci:billing:${n}`,
    source: 'ci',
    service: 'billing',
    environment: 'production',
    status: 'success',
    startedAt: finishedAt,
    finishedAt,
    ...(sha ? { commitSha: sha, repository: 'acme/billing' } : {}),
    actor: null,
    externalId: String(n),
    ...overrides,
  };
}

describe('change failure rate (issue 11)', () => {
  const settings = parseSettings({});
  const all = teamScopes(settings).find((s) => s.name === 'all')!;
  test('A, B, rollback to A, redeploy B: one failed change in four deployments, 25 %', () => {
    const history = [
      deploy('a', '2026-11-20T10:00:00.000Z'),
      deploy('b', '2026-11-20T11:00:00.000Z'),
      deploy('a', '2026-11-20T12:00:00.000Z'),
      deploy('b', '2026-11-20T13:00:00.000Z'),
    ];
    assert.deepEqual(changeFailureRate(settings, all, '2026-11-20', history), {
      rate: 0.25,
      failed: 0,
      rolledBack: 1,
      incidents: 0,
      deployments: 4,
    });
  });

  test('failed deploys count once each, cancelled and future-dated ones nowhere; never over 100 %', () => {
    const history = [
      deploy('a', '2026-11-20T10:00:00.000Z', { status: 'failure' }),
      deploy('a', '2026-11-20T10:30:00.000Z', { status: 'failure' }),
      deploy('a', '2026-11-20T11:00:00.000Z', { status: 'cancelled' }),
      deploy('a', '2026-11-20T11:30:00.000Z', { futureDated: true }),
    ];
    assert.deepEqual(changeFailureRate(settings, all, '2026-11-20', history), {
      rate: 1,
      failed: 2,
      rolledBack: 0,
      incidents: 0,
      deployments: 2,
    });
  });
});

describe('active developers (issue 11)', () => {
  const settings = parseSettings({ bots: ['release-robot', 'ci@acme.example'] });
  const all = teamScopes(settings).find((s) => s.name === 'all')!;

  async function developersAfter(messages: Parameters<ReturnType<typeof createProcessor>>[0][]) {
    const store = new SqliteStore(':memory:');
    const processMessage = createProcessor({ store, settings, logger: memoryLogger() });
    for (const m of messages) await processMessage(m);
    const commits = await store.commitsBetween('2026-01-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z');
    await store.close();
    return activeDevelopers(settings, all, '2026-11-20', commits, []);
  }

  test('a feature branch merged with a merge commit: its authors count (the commits reached main)', async () => {
    const t = '2026-11-19T10:00:00.000Z';
    const feature = [{ name: 'f1', at: t, login: 'dana' }];
    assert.equal(await developersAfter([pushMessage(ZERO, 'f1', feature, { branch: 'feature' })]), 0);
    assert.equal(
      await developersAfter([
        pushMessage(ZERO, 'f1', feature, { branch: 'feature' }),
        pushMessage('a0', 'm1', [...feature, { name: 'm1', at: t, login: 'erin' }]),
      ]),
      2,
    );
  });

  test('bots by login, name and email: renovate[bot], "Renovate Bot", a [bot] email, a configured email', async () => {
    const t = '2026-11-19T10:00:00.000Z';
    const count = await developersAfter([
      pushMessage(ZERO, 'c5', [
        { name: 'c1', at: t, login: 'renovate[bot]' },
        { name: 'c2', at: t, authorName: 'Renovate Bot', email: 'bot@renovateapp.com' },
        { name: 'c3', at: t, authorName: 'dependabot', email: '49699333+dependabot[bot]@users.noreply.github.com' },
        { name: 'c4', at: t, authorName: 'CI', email: 'ci@acme.example' },
        { name: 'c5', at: t, login: 'alice' },
      ]),
    ]);
    assert.equal(count, 1);
  });

  test('a name-only commit and the same person with a login are one developer when their emails match', async () => {
    const t = '2026-11-19T10:00:00.000Z';
    const count = await developersAfter([
      pushMessage(ZERO, 'c2', [
        { name: 'c1', at: t, login: 'alice', email: 'alice@acme.example' },
        { name: 'c2', at: t, authorName: 'Alice Liddell', email: 'Alice@acme.example' },
      ]),
    ]);
    assert.equal(count, 1);
  });
});

describe('rollup figures (issue 11)', () => {
  const settings = parseSettings({
    timezone: 'Europe/Berlin',
    teams: { payments: { services: ['billing'], headcount: 2 } },
  });
  const perDeveloper1d = (figures: Array<{ team: string; deploysPerDeveloperPerDay: { '1d'?: number } }>) =>
    figures.find((f) => f.team === 'payments')?.deploysPerDeveloperPerDay['1d'];

  async function run(now: string, messages: ReturnType<typeof deployMessage>[]) {
    const store = new SqliteStore(':memory:');
    const logger = memoryLogger();
    const sink = new RecordingSink();
    const exporter = new Exporter({ store, sink, settings, logger, now: () => new Date(now) });
    const processMessage = createProcessor({ store, settings, logger });
    for (const m of messages) await processMessage(m);
    const result = await rollup({ store, sink, exporter, settings, logger, now: () => new Date(now) });
    await store.close();
    return { result, sink };
  }

  test("each source's silence: seconds since its last processed delivery, a gauge per source", async () => {
    const { sink } = await run('2026-11-20T12:00:00.000Z', [
      deployMessage('ok', 'a', '2026-11-20T10:00:00.000Z', { receivedAt: '2026-11-20T10:00:05.000Z' }),
    ]);
    const silence = sink.series_.filter((p) => p.metric === 'devstats.source.silence');
    assert.deepEqual(
      silence.map((p) => [p.tags, p.value, p.timestamp]),
      [[['source:ci'], 2 * 3600 - 5, Date.parse('2026-11-20T12:00:00.000Z') / 1000]],
    );
  });

  test('a deploy dated in the future of its receipt counts in no figure', async () => {
    const { result } = await run('2026-11-20T12:00:00.000Z', [
      deployMessage('ok', 'a', '2026-11-20T10:00:00.000Z'),
      // Received at 10:00 but saying it finished at 11:00.
      deployMessage('future', 'b', '2026-11-20T11:00:00.000Z', { receivedAt: '2026-11-20T10:00:00.000Z' }),
    ]);
    assert.equal(perDeveloper1d(result.figures), 1 / 2);
  });

  test("in the hour after midnight, yesterday's closing figures go too, stamped its last second: a 23:58 deploy counts in its day", async () => {
    // Berlin, 20 November: 23:58 local is 22:58Z; the rollup runs at 00:20 local (23:20Z).
    const { result, sink } = await run('2026-11-20T23:20:00.000Z', [
      deployMessage('late', 'a', '2026-11-20T22:58:00.000Z', { receivedAt: '2026-11-20T22:58:30.000Z' }),
    ]);
    assert.equal(result.closing?.[0]?.day, '2026-11-20');
    assert.equal(perDeveloper1d(result.closing ?? []), 1 / 2);
    assert.equal(perDeveloper1d(result.figures), 0, 'the new day has none yet');
    const closing = sink.series_.filter(
      (p) =>
        p.metric === 'devstats.deploys_per_developer_per_day' &&
        p.tags.includes('team:payments') &&
        p.tags.includes('window:1d'),
    );
    assert.deepEqual(
      closing.map((p) => [new Date(p.timestamp * 1000).toISOString(), p.value]),
      [
        ['2026-11-20T23:20:00.000Z', 0],
        ['2026-11-20T22:59:59.000Z', 1 / 2],
      ],
    );
  });

  test('an hour after midnight, only the new day', async () => {
    const { result } = await run('2026-11-21T00:30:00.000Z', [deployMessage('late', 'a', '2026-11-20T22:58:00.000Z')]);
    assert.equal(result.closing, undefined);
  });
});
