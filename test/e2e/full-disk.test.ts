import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SqliteStore } from '../../shared/store/sqlite.ts';
import { ciDeployment } from '../support/fixtures.ts';
import { sign } from '../support/signing.ts';

/*
 * A data directory on a real, tiny disk (a tmpfs): full at start, and filling up while `npm start`
 * runs (issue 25). Mounting needs root, which CI has; elsewhere the suite says why it skips.
 */
const TOKEN = 'full-disk-token';
const root = mkdtempSync(join(tmpdir(), 'devstats-full-'));
function mount(dir: string, size: string): string | undefined {
  mkdirSync(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (error) {
    return `cannot mount a tmpfs here (${String(error).split('\n')[0]})`;
  }
}
const unmount = (dir: string) => {
  try {
    execFileSync('umount', [dir], { stdio: 'pipe' });
  } catch {
    // not mounted
  }
};
const probe = join(root, 'probe');
const skip = mount(probe, '64k');
unmount(probe);
if (skip !== undefined && process.env.CI === 'true') throw new Error(skip);

function start(dataDir: string): { child: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(process.execPath, ['--import', './scripts/preflight.js', 'functions/local/start.ts'], {
    env: { ...process.env, DEVSTATS_DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', DEPLOY_WEBHOOK_TOKEN: TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  return { child, output: () => output };
}

const deploy = (n: number) => JSON.stringify(ciDeployment({ id: `run-${n}` }));
const post = (base: string, body: string) =>
  fetch(`${base}/deployments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: sign.bearer(TOKEN) },
    body,
  });

describe('a full data directory (issue 25)', { skip }, () => {
  after(() => {
    rmSync(root, { recursive: true, force: true });
  });

  test('full at start: one line naming the file and what to do, the configuration errors’ exit code', async () => {
    const disk = join(root, 'tiny');
    mount(disk, '64k');
    try {
      const { child, output } = start(join(disk, 'data'));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.equal(code, 78);
      const lines = output()
        .split('\n')
        .filter((l) => l !== '');
      assert.deepEqual(lines, [
        `devstats: cannot write ${join(disk, 'data', 'queue.sqlite')}: the disk is full; free space there, or set DEVSTATS_DATA_DIR to a folder with room`,
      ]);
    } finally {
      unmount(disk);
    }
  });

  test('a data directory that is a file: the same one line', async () => {
    const file = join(root, 'not-a-folder');
    writeFileSync(file, '');
    const { child, output } = start(file);
    assert.equal(await new Promise<number | null>((resolve) => child.once('exit', resolve)), 78);
    assert.equal(
      output(),
      `devstats: cannot write ${join(file, 'queue.sqlite')}: a file stands where its folder should be; set DEVSTATS_DATA_DIR to a writable folder\n`,
    );
  });

  describe('filling up while it runs', () => {
    const disk = join(root, 'filling');
    let server: { child: ChildProcess; output: () => string };
    let base = '';
    before(async () => {
      mount(disk, '4m');
      server = start(join(disk, 'data'));
      const deadline = Date.now() + 20_000;
      while (!/ingest on (http:\/\/\S+?)\//.test(server.output())) {
        if (Date.now() > deadline) throw new Error(`npm start did not start: ${server.output()}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      base = (/ingest on (http:\/\/\S+?)\//.exec(server.output())?.[1] ?? '').replace('localhost', '127.0.0.1');
    });
    after(async () => {
      const exited = new Promise((resolve) => server.child.once('exit', resolve));
      if (server.child.pid !== undefined) process.kill(-server.child.pid, 'SIGKILL');
      await exited;
      unmount(disk);
    });

    test('deliveries get a 503 with Retry-After while the disk is full, the process stays up, and every retried one is stored once', async () => {
      assert.equal((await post(base, deploy(0))).status, 202);
      // Fill what is left of the disk.
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${join(disk, 'filler')}`, 'bs=64k'], { stdio: 'pipe' });
      } catch {
        // dd stops with "No space left on device": the disk is full
      }
      const refused: number[] = [];
      for (let n = 1; n <= 20; n++) {
        const answer = await post(base, deploy(n));
        const body = (await answer.json()) as { error?: string };
        assert.ok([202, 503].includes(answer.status), `delivery ${n}: ${answer.status} ${JSON.stringify(body)}`);
        if (answer.status === 503) {
          assert.equal(answer.headers.get('retry-after'), '30');
          assert.equal(body.error, 'unavailable');
          refused.push(n);
        }
      }
      assert.ok(refused.length > 0, 'the full disk refused deliveries');
      assert.equal((await fetch(`${base}/healthz`)).status, 200, 'still up');
      // Room again: the senders retry what was refused, and everything is stored exactly once.
      rmSync(join(disk, 'filler'));
      for (const n of refused) assert.equal((await post(base, deploy(n))).status, 202);
      const store = new SqliteStore(join(disk, 'data', 'devstats.sqlite'));
      try {
        const deadline = Date.now() + 20_000;
        let ids: string[] = [];
        while (Date.now() < deadline) {
          ids = (await store.events({ kind: 'deploy' })).map((d) => d.id).sort();
          if (ids.length >= 21) break;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
        assert.deepEqual(ids, Array.from({ length: 21 }, (_, n) => `ci:billing:run-${n}`).sort());
      } finally {
        await store.close();
      }
      assert.doesNotMatch(server.output(), /at .*\.ts:\d+/, 'no stack trace');
    });
  });
});
