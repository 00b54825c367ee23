import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const run = (node: string, args: string[]) =>
  spawnSync(node, ['--import', './scripts/preflight.js', ...args], {
    encoding: 'utf8',
    env: { ...process.env, DEVSTATS_DATA_DIR: mkdtempSync(join(tmpdir(), 'devstats-preflight-')) },
  });

test('npm run devstats prints no ExperimentalWarning, though it opens SQLite', () => {
  const result = run(process.execPath, ['shared/cli/main.ts', 'events']);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, '0 events\n');
  assert.doesNotMatch(result.stderr, /ExperimentalWarning|experimental feature/);
});

test('other warnings still reach stderr', () => {
  const result = run(process.execPath, ['-e', "process.emitWarning('a warning of our own', 'DeprecationWarning')"]);
  assert.match(result.stderr, /DeprecationWarning: a warning of our own/);
});

// The machine's own Node, where it is older than 22.18 (Debian's 20 here).
const systemNode = ['/usr/bin/node', '/usr/local/bin/node'].find((path) => {
  if (!existsSync(path)) return false;
  const version = spawnSync(path, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major < 22 || (major === 22 && minor < 18);
});

test(
  'on a Node older than 22.18: one line naming the version and scripts/node22.sh, exit 1',
  { skip: systemNode === undefined ? 'no Node older than 22.18 on this machine' : undefined },
  () => {
    const result = run(systemNode!, ['shared/cli/main.ts', 'events']);
    assert.equal(result.status, 1);
    assert.equal(result.stdout, '');
    const lines = result.stderr.trimEnd().split('\n');
    assert.equal(lines.length, 1, result.stderr);
    assert.match(
      lines[0]!,
      /^DevStats needs Node\.js 22\.18 or newer, and this is Node\.js 2\d\.\d+\.\d+: run `\. scripts\/node22\.sh` first/,
    );
  },
);
