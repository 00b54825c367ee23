import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main as cli } from '../../shared/cli/main.ts';
import { ENVIRONMENT_VARIABLES } from '../../shared/pipeline/config.ts';
import { SECRET_VARIABLES } from '../../shared/sources/registry.ts';
import { DISTRIBUTIONS, METRIC } from '../../shared/export/metric-names.ts';
import { memoryLogger } from '../../shared/log.ts';
import { pushDashboard } from '../../shared/export/datadog-api.ts';
import { FakeDatadog } from '../support/datadog-server.ts';

const require = createRequire(import.meta.url);
const { parse } = require('@cdktf/hcl2json') as {
  parse: (name: string, text: string) => Promise<Record<string, unknown>>;
};

type Block = Record<string, unknown>;
const INFRA = 'infra';
const files = readdirSync(INFRA).filter((f) => f.endsWith('.tf'));
const dashboard = JSON.parse(readFileSync(join(INFRA, 'dashboard.json'), 'utf8')) as Record<string, unknown> & {
  title: string;
};

/** Metrics from DevStats, plus the Google Cloud integration's Pub/Sub metrics (the dead-letter backlog). */
const EMITTED = new Set<string>(Object.values(METRIC));
const FROM_INTEGRATIONS = /^gcp\.pubsub\./;

function metricsIn(query: string): string[] {
  return [...query.matchAll(/(?:^|[\s(:,])(?:avg|sum|min|max|count|p\d{2,3}):([a-z0-9_.]+)\{/g)].map((m) => m[1] ?? '');
}

describe('infra/ (Terraform), checked without the terraform binary', () => {
  const parsed: Record<string, Block> = {};
  before(async () => {
    for (const file of files) parsed[file] = await parse(file, readFileSync(join(INFRA, file), 'utf8'));
  });

  const resources = (type: string): Record<string, Block> => {
    const out: Record<string, Block> = {};
    for (const file of Object.values(parsed)) {
      const byType = (file.resource as Record<string, Record<string, Block[]>> | undefined)?.[type] ?? {};
      for (const [name, blocks] of Object.entries(byType)) out[name] = blocks[0] ?? {};
    }
    return out;
  };
  const locals = (): Block => {
    const all: Block = {};
    for (const block of Object.values(parsed).flatMap((f) => (f.locals as Block[] | undefined) ?? []))
      Object.assign(all, block);
    return all;
  };

  test('every .tf file parses (HashiCorp HCL parser)', () => {
    assert.deepEqual(Object.keys(parsed).sort(), files.sort());
    assert.ok(files.length >= 8);
  });

  test('each function runs a target the code registers, on nodejs22', async () => {
    process.env.DEVSTATS_DATA_DIR = mkdtempSync(join(tmpdir(), 'devstats-infra-'));
    await import('../../functions/index.ts');
    const { getFunction } = await import('@google-cloud/functions-framework/testing');
    const functions = resources('google_cloudfunctions2_function');
    assert.deepEqual(Object.keys(functions).sort(), ['ingest', 'process', 'rollup']);
    for (const [name, fn] of Object.entries(functions)) {
      const build = (fn.build_config as Array<{ entry_point: string; runtime: string }>)[0]!;
      assert.equal(build.entry_point, name);
      assert.equal(build.runtime, '${local.build.runtime}');
      assert.ok(getFunction(build.entry_point), `target ${build.entry_point} is registered`);
    }
    assert.equal((locals().build as Block).runtime, 'nodejs22');
    rmSync(process.env.DEVSTATS_DATA_DIR, { recursive: true, force: true });
  });

  test('every environment variable and secret the functions get is one the code reads', () => {
    const functions = resources('google_cloudfunctions2_function');
    const commonEnv = String(locals().common_env);
    for (const name of commonEnv.match(/\b[A-Z][A-Z0-9_]+(?= *=)/g) ?? [])
      assert.ok(ENVIRONMENT_VARIABLES.includes(name), `${name} is read by the code`);
    for (const [name, fn] of Object.entries(functions)) {
      const service = (fn.service_config as Block[])[0]!;
      for (const key of String(service.environment_variables).match(/\b[A-Z][A-Z0-9_]+(?= *=)/g) ?? []) {
        if (key === 'FUNCTION_SOURCE') continue; // functions-framework's: checked below
        assert.ok(ENVIRONMENT_VARIABLES.includes(key), `${name}: ${key} is read by the code`);
      }
      // Each function starts its own bundle, one that build/bundle.js makes.
      assert.match(String(service.environment_variables), new RegExp(`FUNCTION_SOURCE = "dist/bundle/${name}\\.js"`));
      assert.match(readFileSync('build/bundle.js', 'utf8'), new RegExp(`${name}: 'functions/${name}\\.ts'`));
      for (const secret of (service.secret_environment_variables as Block[] | undefined) ?? []) {
        assert.ok(ENVIRONMENT_VARIABLES.includes(String(secret.key)), `${name}: secret ${String(secret.key)}`);
      }
    }
    // ingest gets exactly the webhook secrets the code knows, each from Secret Manager.
    assert.deepEqual(
      Object.values(locals().webhook_secret_env as Record<string, string>).sort(),
      Object.values(SECRET_VARIABLES).sort(),
    );
    const ingest = (functions.ingest!.service_config as Block[])[0]!;
    // Mounted as files, read again while the instance is warm (a rotation needs no restart).
    assert.ok(JSON.stringify(ingest.dynamic).includes('secret_volumes'));
    assert.match(String(ingest.environment_variables), /webhook_secret_env\[source\]\}_FILE/);
    for (const variable of Object.values(SECRET_VARIABLES))
      assert.ok(ENVIRONMENT_VARIABLES.includes(`${variable}_FILE`));
    for (const name of ['process', 'rollup']) {
      const secrets = ((functions[name]!.service_config as Block[])[0]!.secret_environment_variables as Block[]).map(
        (s) => s.key,
      );
      assert.deepEqual(secrets, ['DD_API_KEY']);
    }
  });

  test('process and rollup take internal traffic only; the source archive holds the code, not .env, .npmrc or tests', () => {
    const functions = resources('google_cloudfunctions2_function');
    for (const name of ['process', 'rollup'])
      assert.equal((functions[name]!.service_config as Block[])[0]!.ingress_settings, 'ALLOW_INTERNAL_ONLY', name);
    const archive = (parsed['functions.tf']!.data as Record<string, Record<string, Block[]>>).archive_file!.source![0]!;
    for (const excluded of ['.env', '.npmrc', 'test', 'bench', 'infra', '.git', 'node_modules', '.devstats'])
      assert.ok((archive.excludes as string[]).includes(excluded), excluded);
  });

  test('process is fed devstats-raw, spinnaker-events and cloud-builds, with dead-lettering; rollup by the tick', () => {
    const topics = locals().topics as Record<string, string>;
    assert.deepEqual(
      [topics.raw, topics.tick, topics.spinnaker, topics.cloudbuild],
      ['devstats-raw', 'devstats-tick', 'spinnaker-events', 'cloud-builds'],
    );
    const subscriptions = resources('google_pubsub_subscription');
    for (const name of ['process', 'rollup']) {
      assert.ok((subscriptions[name]!.dead_letter_policy as Block[])[0], `${name} dead-letters`);
      assert.match(JSON.stringify(subscriptions[name]!.push_config), /\/topics\//, 'the push path names the topic');
    }
    assert.match(String(subscriptions.process!.for_each), /local\.process_topics/);
    // Ticks are dead-lettered apart from data, so `devstats replay` resends deliveries only.
    const deadTopic = (name: string) =>
      String((subscriptions[name]!.dead_letter_policy as Block[])[0]!.dead_letter_topic);
    assert.match(deadTopic('process'), /google_pubsub_topic\.dead_letter\.id/);
    assert.match(deadTopic('rollup'), /google_pubsub_topic\.dead_ticks\.id/);
    assert.ok(resources('google_cloud_scheduler_job').tick);
  });

  test('every metric the dashboard and the monitors query is one the code emits', () => {
    const queries = JSON.stringify(dashboard)
      .match(/"query":"[^"]+"/g)!
      .map((q) => q.slice(9, -1));
    const monitors = Object.values(resources('datadog_monitor')).map((m) => String(m.query));
    const used = [...queries, ...monitors].flatMap(metricsIn);
    assert.ok(used.length >= 9, `found ${used.length} metric queries`);
    for (const metric of used) assert.ok(EMITTED.has(metric) || FROM_INTEGRATIONS.test(metric), `${metric} is emitted`);
    // Every distribution gets percentiles.
    assert.deepEqual(Object.keys(locals().distributions as Block).sort(), [...DISTRIBUTIONS].sort());
  });
});

describe('the dashboard definition', () => {
  async function unparsed(definition: unknown): Promise<string[]> {
    const { ObjectSerializer } =
      await import('@datadog/datadog-api-client/dist/packages/datadog-api-client-v1/models/ObjectSerializer.js');
    const model = ObjectSerializer.deserialize(definition, 'Dashboard', '') as unknown;
    const problems: string[] = [];
    const walk = (value: unknown, path: string) => {
      if (value === null || typeof value !== 'object') return;
      if ((value as { _unparsed?: boolean })._unparsed === true) problems.push(path || '(dashboard)');
      if (value.constructor.name === 'UnparsedObject') problems.push(path);
      for (const [key, child] of Object.entries(value)) if (key !== '_data') walk(child, `${path}.${key}`);
    };
    walk(model, '');
    return problems;
  }

  test("validates against the Datadog client's own Dashboard model", async () => {
    assert.deepEqual(await unparsed(dashboard), []);
  });

  test('(the check would catch a widget type Datadog does not know)', async () => {
    const broken = structuredClone(dashboard) as unknown as { widgets: Array<{ definition: { type: string } }> };
    broken.widgets[0]!.definition.type = 'timeseriez';
    assert.notDeepEqual(await unparsed(broken), []);
  });

  describe('devstats dashboard push', () => {
    const dd = new FakeDatadog();
    before(() => dd.start());
    after(() => dd.stop());
    const config = () => ({
      apiKey: 'k',
      appKey: 'a',
      site: 'datadoghq.com',
      apiUrl: dd.url,
      timeoutMs: 2000,
      retries: 0,
      backoffMs: 1,
      dataDir: '/x',
    });

    test('creates the dashboard, then updates it by title: one dashboard, however often pushed', async () => {
      const first = await pushDashboard(config(), memoryLogger(), dashboard);
      const second = await pushDashboard(config(), memoryLogger(), dashboard);
      assert.equal(first.action, 'created');
      assert.deepEqual([second.action, second.id], ['updated', first.id]);
      assert.equal(dd.dashboards.size, 1);
      const stored = dd.dashboards.get(first.id) as {
        title: string;
        widgets: unknown[];
        template_variables: unknown[];
      };
      assert.equal(stored.title, dashboard.title);
      assert.equal(stored.widgets.length, (dashboard.widgets as unknown[]).length);
      assert.deepEqual(stored.template_variables, dashboard.template_variables);
    });

    test('devstats dashboard push tailors it: the production environments of the configuration, the days of its time zone', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'devstats-dashboard-'));
      const file = join(dir, 'devstats.json');
      writeFileSync(
        file,
        JSON.stringify({ timezone: 'Europe/Berlin', productionEnvironments: ['prod-eu', 'prod-us'] }),
      );
      const lines: string[] = [];
      const env = { DD_API_KEY: 'k', DD_APP_KEY: 'a', DD_API_URL: dd.url, DEVSTATS_CONFIG: file };
      assert.equal(await cli(['dashboard', 'push'], env, (l) => lines.push(l)), 0);
      const pushed = [...dd.dashboards.values()].at(-1) as {
        template_variables: Array<{ name: string; default: string; available_values: string[] }>;
        widgets: Array<{ definition: { title?: string } }>;
      };
      assert.deepEqual(
        pushed.template_variables.find((v) => v.name === 'env'),
        { name: 'env', prefix: 'env', default: 'prod-eu', available_values: ['prod-eu', 'prod-us'] },
      );
      const titles = pushed.widgets.map((w) => w.definition.title ?? '');
      assert.ok(titles.includes('Deploys per developer per day (7 days, days in Europe/Berlin)'), titles.join('; '));
      assert.ok(!JSON.stringify(pushed).includes('days in UTC'));
      // The organisation's active developers is the team:all gauge, not an average over teams.
      assert.ok(JSON.stringify(pushed).includes('max:devstats.developers.active{team:all}'));
      rmSync(dir, { recursive: true, force: true });
    });

    test('Terraform tailors it the same way, from the same configuration file', () => {
      const tf = readFileSync(join(INFRA, 'datadog.tf'), 'utf8');
      assert.match(tf, /productionEnvironments/);
      assert.match(tf, /"days in UTC", "days in \$\{local\.reporting_timezone\}"/);
      assert.match(tf, /variable\.name == "env"/);
    });

    test('refuses without an application key', async () => {
      await assert.rejects(pushDashboard({ ...config(), appKey: undefined }, memoryLogger(), dashboard), /DD_APP_KEY/);
    });
  });
});
