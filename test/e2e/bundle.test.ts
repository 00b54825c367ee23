import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FakeDatadog } from '../support/datadog-server.ts';
import { type Emulator, skipUnlessEmulator, startEmulator } from '../support/emulator.ts';
import { githubPush } from '../support/fixtures.ts';
import { freePort } from '../support/ports.ts';
import { sign } from '../support/signing.ts';

const sha = (n: number) => n.toString(16).padStart(40, 'c');

/** A push of two commits, the deploy that ships them, and a failed deploy after it. */
function messages(base: number): Array<{ data: unknown; attributes: Record<string, string> }> {
  const at = (minutesAgo: number) => new Date(base - minutesAgo * 60_000).toISOString();
  const attributes = (source: string, eventType: string, deliveryId: string) => ({
    source,
    eventType,
    deliveryId,
    receivedAt: at(0),
  });
  return [
    {
      data: {
        ref: 'refs/heads/main',
        before: sha(0),
        after: sha(2),
        repository: { full_name: 'acme/billing', name: 'billing', pushed_at: Math.floor(base / 1000) - 7200 },
        commits: [
          { id: sha(1), timestamp: at(180), author: { name: 'Ann', username: 'ann' } },
          { id: sha(2), timestamp: at(120), author: { name: 'Bob', username: 'bob' } },
        ],
        head_commit: { id: sha(2) },
      },
      attributes: attributes('github', 'push', 'push-1'),
    },
    {
      data: {
        service: 'billing',
        environment: 'production',
        status: 'success',
        startedAt: at(10),
        finishedAt: at(5),
        commitSha: sha(2),
        repository: 'acme/billing',
        id: 'deploy-1',
      },
      attributes: attributes('ci', 'deployment', 'ci:billing:deploy-1'),
    },
    {
      data: {
        service: 'billing',
        environment: 'production',
        status: 'failure',
        startedAt: at(4),
        finishedAt: at(3),
        id: 'deploy-2',
      },
      attributes: attributes('ci', 'deployment', 'ci:billing:deploy-2'),
    },
  ];
}

async function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  return new Promise((resolve) => child.once('exit', resolve));
}

describe('the deployed bundle (issue 15): esbuild, each function split, Datadog serializers trimmed', () => {
  let out: string;
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'devstats-bundle-'));
    // Inside the repository, as on deploy: what the bundle leaves out resolves from node_modules.
    mkdirSync('.tmp', { recursive: true });
    out = mkdtempSync(join(process.cwd(), '.tmp', 'bundle-'));
    execFileSync(process.execPath, ['build/bundle.js', '--outdir', out], { stdio: 'pipe' });
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(out, { recursive: true, force: true });
  });

  /**
   * Runs the messages through a fresh `process` instance loaded from `target`, storing in SQLite or
   * in the environment's store (`store`, e.g. a Firestore emulator's project): what Datadog received.
   */
  async function processWith(
    target: string,
    base: number,
    store: Record<string, string> = { DEVSTATS_STORE: 'sqlite' },
  ) {
    const dd = await new FakeDatadog().start();
    const dataDir = mkdtempSync(join(dir, 'data-'));
    try {
      const child = spawn(process.execPath, ['test/support/process-child.ts', target], {
        env: {
          ...process.env,
          DD_API_KEY: 'bundle-test',
          DD_API_URL: dd.url,
          DEVSTATS_DATA_DIR: dataDir,
          ...store,
          DEVSTATS_BUS: 'memory',
          DEVSTATS_MESSAGES: JSON.stringify(messages(base)),
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      assert.equal(await exited(child), 0);
      return dd.accepted.map((r) => ({ path: r.path, body: r.body, encoding: r.headers['content-encoding'] }));
    } finally {
      await dd.stop();
    }
  }

  /** Bundled against source, both with `store(run)` as the store: the same requests to Datadog, as the source sends them. */
  async function sameAsSource(store: (run: 'bundled' | 'source') => Record<string, string> | undefined) {
    const base = Date.now() - 60_000;
    const bundled = await processWith(join(out, 'process.js'), base, store('bundled'));
    const source = await processWith(join(process.cwd(), 'functions/process.ts'), base, store('source'));
    // The pipeline's lag is measured by the clock at export: present in both, compared without it.
    const LAG = 'devstats.pipeline.lag';
    const withoutLag = (requests: typeof bundled) =>
      requests.map((r) => {
        const series = (r.body as { series?: Array<{ metric: string }> }).series;
        if (series === undefined) return r;
        return { ...r, body: { ...(r.body as object), series: series.filter((p) => p.metric !== LAG) } };
      });
    assert.deepEqual(withoutLag(bundled), withoutLag(source));
    for (const run of [bundled, source]) {
      const metrics = run.flatMap((r) => (r.body as { series?: Array<{ metric: string }> }).series ?? []);
      assert.ok(
        metrics.some((p) => p.metric === LAG),
        'the lag is sent',
      );
    }
    const paths = bundled.map((r) => r.path);
    assert.ok(paths.includes('/api/v2/dora/deployment'), paths.join(', '));
    assert.ok(paths.includes('/api/v2/dora/failure'), paths.join(', '));
    assert.ok(paths.includes('/api/v1/distribution_points'), paths.join(', '));
    // Compressed by the bundle's zlib shim (build/shims/pako.cjs), and read back by the local Datadog.
    assert.ok(
      bundled.some((r) => r.encoding === 'deflate' || r.encoding === 'gzip'),
      'a compressed request',
    );
    const deployment = bundled.find((r) => r.path === '/api/v2/dora/deployment')?.body as {
      data: { attributes: { service: string; git?: { commit_sha: string } } };
    };
    assert.equal(deployment.data.attributes.service, 'billing');
    assert.equal(deployment.data.attributes.git?.commit_sha, sha(2));
  }

  test('process, bundled, sends Datadog exactly what the source sends: the DORA deployment with its commit, the failure, the points', async () => {
    await sameAsSource(() => undefined);
  });

  describe('with the Firestore store, as deployed', { skip: skipUnlessEmulator('firestore') }, () => {
    let emulator: Emulator | undefined;
    before(async () => {
      emulator = await startEmulator('firestore');
    });
    after(async () => {
      await emulator?.stop();
    });

    test('the Firestore client is inside the bundle, not imported from node_modules', () => {
      const chunks = readdirSync(out).filter((name) => name.endsWith('.js'));
      const text = chunks.map((name) => readFileSync(join(out, name), 'utf8')).join('\n');
      assert.doesNotMatch(text, /from\s*"@google-cloud\/firestore"|import\("@google-cloud\/firestore"\)/);
      assert.match(text, /node_modules\/@google-cloud\/firestore\/build\/src\/index\.js/);
    });

    test('process, bundled with the Firestore client, stores in Firestore and sends Datadog what the source sends', async () => {
      // A project of its own per run, so each starts from an empty store, as the SQLite runs do.
      const id = randomUUID().slice(0, 8);
      await sameAsSource((run) => ({
        DEVSTATS_STORE: 'firestore',
        FIRESTORE_EMULATOR_HOST: emulator?.host ?? '',
        GOOGLE_CLOUD_PROJECT: `devstats-bundle-${run}-${id}`,
      }));
    });
  });

  test('ingest, bundled, under functions-framework: a signed push is a 202, a forged one a 401, a truncated body a 400', async () => {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        'node_modules/@google-cloud/functions-framework/build/src/main.js',
        '--target=ingest',
        `--source=${join(out, 'index.js')}`,
      ],
      {
        env: {
          ...process.env,
          PORT: String(port),
          GITHUB_WEBHOOK_SECRET: 'bundle-secret',
          DEVSTATS_DATA_DIR: mkdtempSync(join(dir, 'ingest-')),
          DEVSTATS_STORE: 'sqlite',
          DEVSTATS_BUS: 'memory',
        },
        stdio: 'ignore',
      },
    );
    try {
      const body = JSON.stringify(githubPush());
      const post = async (signature: string, payload = body) => {
        for (let attempt = 0; ; attempt++) {
          try {
            return await fetch(`http://127.0.0.1:${port}/github`, {
              method: 'POST',
              headers: {
                'content-type': 'application/json',
                'x-github-event': 'push',
                'x-github-delivery': `bundle-${attempt}`,
                'x-hub-signature-256': signature,
              },
              body: payload,
            });
          } catch (error) {
            if (attempt > 500) throw error;
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        }
      };
      assert.equal((await post(sign.github(body, 'bundle-secret'))).status, 202);
      assert.equal((await post(sign.github(body, 'another-secret'))).status, 401);
      const truncated = body.slice(0, 100);
      const refused = await post(sign.github(truncated, 'bundle-secret'), truncated);
      assert.equal(refused.status, 400);
      assert.match(((await refused.json()) as { message: string }).message, /not valid JSON/);
    } finally {
      child.kill('SIGTERM');
      await exited(child);
    }
  });
});
