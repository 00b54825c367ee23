import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DEMO_SETTINGS_YAML, demoHistory, demoSecrets, runDemo } from '../../shared/cli/demo-history.ts';
import { doctor } from '../../shared/cli/doctor-checks.ts';
import { memoryLogger } from '../../shared/log.ts';
import { createProcessor } from '../../shared/pipeline/process.ts';
import { buildReport, dayRange, previousPeriod } from '../../shared/report/figures.ts';
import { parseSettings } from '../../shared/events/settings.ts';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { parse as parseYaml } from 'yaml';
import { main as cli } from '../../shared/cli/main.ts';
import { FakeDatadog } from '../support/datadog-server.ts';

const NOW = new Date('2026-11-20T18:00:00Z');
const settings = parseSettings(parseYaml(DEMO_SETTINGS_YAML));

describe('devstats demo', () => {
  test('the same day gives the same history; a second load stores nothing new', async () => {
    const secrets = demoSecrets();
    const deliveries = demoHistory(NOW, secrets, { from: '2026-10-01' });
    const again = demoHistory(NOW, secrets, { from: '2026-10-01' });
    assert.deepEqual(
      again.map((d) => d.body),
      deliveries.map((d) => d.body),
    );
    const store = new SqliteStore(':memory:');
    try {
      const processMessage = createProcessor({ store, settings, logger: memoryLogger(), now: () => NOW });
      const options = {
        secrets,
        config: { maxBodyBytes: 25 * 1024 * 1024, rawTopic: 'devstats-raw', projectId: undefined },
        settings,
        logger: memoryLogger(),
        processMessage,
      };
      const first = await runDemo({ ...options, deliveries });
      // Every delivery is signed as its source signs it, so ingest accepts each one.
      assert.deepEqual(first.answers, { accepted: deliveries.length });
      assert.equal(first.rejected, 0);
      assert.ok(
        first.duplicates > 0 && first.duplicates < deliveries.length / 20,
        `GitHub redeliveries: ${first.duplicates}`,
      );
      const events = await store.events({});
      const second = await runDemo({ ...options, deliveries });
      assert.equal(second.stored, 0);
      assert.equal(second.duplicates, deliveries.length);
      assert.equal((await store.events({})).length, events.length);

      // What the history is for: every team has figures, with failures, bots, a hotfix and incidents in them.
      const deploys = events.filter((e) => e.kind === 'deploy');
      assert.deepEqual([...new Set(deploys.map((d) => d.source))].sort(), ['ci', 'github', 'terraform']);
      assert.ok(deploys.some((d) => d.status === 'failure'));
      assert.ok(deploys.some((d) => d.environment === 'pre-prod'));
      assert.ok(events.some((e) => e.kind === 'push' && e.branch.startsWith('hotfix/')));
      assert.ok(events.some((e) => e.kind === 'commit' && e.isBot));
      assert.ok(events.some((e) => e.kind === 'incident'));
      const period = dayRange('2026-10-01', '2026-11-20');
      const report = await buildReport(store, settings, { period, comparison: previousPeriod(period), now: NOW });
      assert.deepEqual(
        report.teams.map((t) => t.team),
        ['payments', 'search', 'platform', 'all'],
      );
      for (const team of report.teams) {
        assert.ok(team.current.deployments > 0, team.team);
        assert.ok(
          team.current.deploysPerDeveloperPerDay !== null && team.current.deploysPerDeveloperPerDay > 0,
          team.team,
        );
        assert.ok(team.current.changeFailureRate !== null && team.current.changeFailureRate < 0.5, team.team);
      }
      for (const team of ['payments', 'search']) {
        const p50 = report.teams.find((t) => t.team === team)?.current.leadTimeP50;
        assert.ok(p50 !== null && p50 !== undefined && p50 > 3600, `${team} lead time ${String(p50)}`);
      }
    } finally {
      await store.close();
    }
  });

  test('through the CLI: the teams file is written, and the outbox holds what Datadog would get', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'devstats-demo-'));
    const lines: string[] = [];
    // The configuration's own secrets (a file that is not there) do not get in the demo's way.
    const code = await cli(
      ['demo', '--from', '2026-11-01'],
      { DEVSTATS_DATA_DIR: dataDir, GITHUB_WEBHOOK_SECRET_FILE: join(dataDir, 'missing'), DEPLOY_WEBHOOK_TOKEN: 'x' },
      (l) => lines.push(l),
    );
    assert.equal(code, 0, lines.join('\n'));
    assert.match(lines.join('\n'), /answered: accepted \d+; processed: \d+ stored/);
    assert.doesNotMatch(lines.join('\n'), /unauthorized/);
    assert.match(lines.join('\n'), new RegExp(`DEVSTATS_CONFIG=${join(dataDir, 'demo.yaml')} npm start`));
    const events: string[] = [];
    await cli(['events', '--kind', 'deploy'], { DEVSTATS_DATA_DIR: dataDir }, (l) => events.push(l));
    assert.ok(events.length > 20);
  });

  test('refuses to fill a real Datadog organisation without --to-datadog', async () => {
    await assert.rejects(
      cli(
        ['demo'],
        { DEVSTATS_DATA_DIR: mkdtempSync(join(tmpdir(), 'devstats-demo-')), DD_API_KEY: 'real' },
        () => undefined,
      ),
      /DD_API_KEY is set/,
    );
  });
});

describe('devstats doctor', () => {
  let datadog: FakeDatadog;
  before(async () => {
    datadog = await new FakeDatadog().start();
    datadog.validKey = 'good-key';
  });
  after(() => datadog.stop());

  const find = (checks: Awaited<ReturnType<typeof doctor>>, name: string) => {
    const check = checks.find((c) => c.name === name);
    assert.ok(check, `no check named ${name}: ${checks.map((c) => c.name).join(', ')}`);
    return check;
  };

  test('a good key, a secret, a fresh source: ok; no secret and a silent source: warnings that say what to do', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'devstats-doctor-'));
    const store = new SqliteStore(join(dataDir, 'devstats.sqlite'));
    await store.noteSourceSeen('github', '2026-11-20T17:00:00.000Z');
    await store.noteSourceSeen('ci', '2026-11-10T17:00:00.000Z');
    await store.close();
    const config = join(dataDir, 'devstats.yaml');
    writeFileSync(config, DEMO_SETTINGS_YAML);
    const env = {
      DEVSTATS_DATA_DIR: dataDir,
      DEVSTATS_CONFIG: config,
      DD_API_KEY: 'good-key',
      DD_API_URL: datadog.url,
      GITHUB_WEBHOOK_SECRET: 's',
      DEPLOY_WEBHOOK_TOKEN: 't',
    };
    const checks = await doctor(env, NOW);
    assert.equal(find(checks, 'configuration').status, 'ok');
    assert.match(find(checks, 'configuration').detail, /3 teams \(payments, search, platform\)/);
    assert.equal(find(checks, 'secret of github').status, 'ok');
    assert.equal(find(checks, 'secret of terraform').status, 'warn');
    assert.match(find(checks, 'secret of terraform').fix ?? '', /TERRAFORM_NOTIFICATION_TOKEN/);
    assert.deepEqual(find(checks, 'Datadog API key'), {
      name: 'Datadog API key',
      status: 'ok',
      detail: `valid at ${datadog.url}`,
    });
    assert.ok(datadog.accepted.some((r) => r.path === '/api/v1/validate' && r.headers['dd-api-key'] === 'good-key'));
    assert.equal(find(checks, 'last delivery of github').status, 'ok');
    const silent = find(checks, 'last delivery of ci');
    assert.equal(silent.status, 'warn');
    assert.match(silent.detail, /10\.0 days ago/);
    assert.equal(checks.filter((c) => c.status === 'fail').length, 0);

    const lines: string[] = [];
    assert.equal(await cli(['doctor'], env, (l) => lines.push(l)), 0);
    assert.match(lines.at(-1) ?? '', /^\d+ checks: \d+ ok, \d+ warnings, 0 failed$/);
  });

  test('a key Datadog refuses, an unreadable secret file, a bad variable: failures, and exit 1', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'devstats-doctor-'));
    const env = {
      DEVSTATS_DATA_DIR: dataDir,
      DD_API_KEY: 'stale-key',
      DD_API_URL: datadog.url,
      GITHUB_WEBHOOK_SECRET_FILE: join(dataDir, 'missing'),
    };
    const checks = await doctor(env, NOW);
    const key = find(checks, 'Datadog API key');
    assert.equal(key.status, 'fail');
    assert.match(key.detail, /refuses it \(403\)/);
    assert.match(key.fix ?? '', /DD_SITE/);
    assert.equal(find(checks, 'secret of github').status, 'fail');
    assert.equal(await cli(['doctor'], env, () => undefined), 1);

    const broken = await doctor({ DEVSTATS_DATA_DIR: dataDir, DEVSTATS_MAX_BODY_BYTES: 'lots' }, NOW);
    assert.equal(broken.length, 1);
    assert.equal(broken[0]?.status, 'fail');
    assert.match(broken[0]?.detail ?? '', /DEVSTATS_MAX_BODY_BYTES/);
  });
});
