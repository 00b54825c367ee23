import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../shared/pipeline/config.ts';
import { ConfigError } from '../../shared/config-error.ts';
import { canonicalEnvironment, parseSettings } from '../../shared/events/settings.ts';
import { loadSettings } from '../../shared/events/settings-file.ts';

describe('environment', () => {
  const cases: Array<[string, Record<string, string>, { bus: string; store: string }]> = [
    ['nothing set: embedded', {}, { bus: 'memory', store: 'sqlite' }],
    ['on Cloud Functions', { K_SERVICE: 'ingest' }, { bus: 'pubsub', store: 'firestore' }],
    [
      'next to the Pub/Sub emulator only',
      { PUBSUB_EMULATOR_HOST: 'localhost:8085' },
      { bus: 'pubsub', store: 'sqlite' },
    ],
    [
      'next to the Firestore emulator only',
      { FIRESTORE_EMULATOR_HOST: 'localhost:8086' },
      { bus: 'memory', store: 'firestore' },
    ],
    [
      'explicit choices win',
      { K_SERVICE: 'x', DEVSTATS_BUS: 'memory', DEVSTATS_STORE: 'sqlite' },
      { bus: 'memory', store: 'sqlite' },
    ],
    ['GOOGLE_CLOUD_PROJECT chooses nothing', { GOOGLE_CLOUD_PROJECT: 'p' }, { bus: 'memory', store: 'sqlite' }],
  ];
  for (const [name, env, expected] of cases) {
    test(name, () => {
      const config = loadConfig(env);
      assert.deepEqual({ bus: config.bus, store: config.store }, expected);
    });
  }
  test('secrets: comma-separated for rotation, blank means unset', () => {
    const config = loadConfig({ GITHUB_WEBHOOK_SECRET: 'new, old', DEPLOY_WEBHOOK_TOKEN: '' });
    assert.deepEqual(config.secrets.github, ['new', 'old']);
    assert.deepEqual(config.secrets.ci, []);
  });
  test('a secret of " , " is unset', () => {
    assert.deepEqual(loadConfig({ GITHUB_WEBHOOK_SECRET: ' , ' }).secrets.github, []);
  });
  test('DEVSTATS_INSECURE_DEV is refused on Google Cloud (K_SERVICE is set)', () => {
    assert.equal(loadConfig({ DEVSTATS_INSECURE_DEV: '1' }).insecureDev, true);
    assert.throws(
      () => loadConfig({ DEVSTATS_INSECURE_DEV: '1', K_SERVICE: 'devstats-ingest' }),
      (e: unknown) => e instanceof ConfigError && /DEVSTATS_INSECURE_DEV is refused on Google Cloud/.test(e.message),
    );
  });
  test('a secret may come from a file (<SECRET>_FILE), as Secret Manager volumes mount them', () => {
    const config = loadConfig({ GITHUB_WEBHOOK_SECRET_FILE: '/etc/secrets/github/value', DEVSTATS_SECRET_TTL_MS: '0' });
    assert.deepEqual(config.secretFiles, { github: '/etc/secrets/github/value' });
    assert.equal(config.secretTtlMs, 0);
  });
  test('an invalid value names the variable', () => {
    assert.throws(
      () => loadConfig({ DEVSTATS_MAX_BODY_BYTES: 'lots' }),
      (e: unknown) => e instanceof ConfigError && /DEVSTATS_MAX_BODY_BYTES/.test(e.message),
    );
  });
});

describe('settings file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'devstats-settings-'));

  test('YAML and JSON both load, defaults fill the rest', () => {
    const yaml = join(dir, 'devstats.yaml');
    writeFileSync(yaml, 'timezone: Europe/Berlin\nteams:\n  payments:\n    services: [billing]\n    headcount: 6\n');
    const settings = loadSettings(yaml);
    assert.equal(settings.timezone, 'Europe/Berlin');
    assert.deepEqual(settings.teams.payments, { services: ['billing'], repositories: [], members: [], headcount: 6 });
    assert.equal(settings.developerWindowDays, 28);
    const json = join(dir, 'devstats.json');
    writeFileSync(json, JSON.stringify({ productionEnvironments: ['prod-eu', 'prod-us'] }));
    assert.deepEqual(loadSettings(json).productionEnvironments, ['prod-eu', 'prod-us']);
  });

  const invalid: Array<[string, string]> = [
    ['teams:\n  payments:\n    services: billing\n', 'teams.payments.services'],
    ['timezone: Mars/Olympus\n', 'timezone'],
    ['developerWindowDays: 0\n', 'developerWindowDays'],
    ['terraform:\n  workspaces:\n    net: { service: network }\n', 'terraform.workspaces.net.environment'],
    ['teems: {}\n', '(root)'],
  ];
  for (const [text, field] of invalid) {
    test(`an invalid file names the field: ${field}`, () => {
      const path = join(dir, `bad-${field}.yaml`);
      writeFileSync(path, text);
      assert.throws(
        () => loadSettings(path),
        (e: unknown) => e instanceof ConfigError && e.message.includes(field),
      );
    });
  }

  test('start-up stops with exit code 78 and the field named', () => {
    const path = join(dir, 'start.yaml');
    writeFileSync(path, 'developerWindowDays: -3\n');
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', "await import('./functions/index.ts')"], {
      env: { ...process.env, DEVSTATS_CONFIG: path },
      encoding: 'utf8',
    });
    assert.equal(result.status, 78);
    assert.match(result.stderr, /developerWindowDays/);
  });

  test('environment names: built-in aliases, configured aliases, production list', () => {
    const settings = parseSettings({ environmentAliases: { production: ['live-eu'] } });
    assert.deepEqual(
      ['prod', 'PRD', 'gke-prod-1', 'live-eu', 'stg', 'staging-2', 'dev', 'qa', 'sandbox'].map((n) =>
        canonicalEnvironment(settings, n),
      ),
      ['production', 'production', 'production', 'production', 'staging', 'staging', 'development', 'test', 'sandbox'],
    );
  });
});
