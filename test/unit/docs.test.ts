import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  configurationDoc,
  ENV_MEANINGS,
  envVariables,
  SETTING_MEANINGS,
  settingFields,
} from '../../scripts/configuration-doc.ts';
import { main as cli } from '../../shared/cli/main.ts';
import { TOPIC_SOURCES, WEBHOOK_SOURCES } from '../../shared/sources/registry.ts';

/*
 * The docs cannot rot (issue 29): the README stays a page, every relative link and anchor resolves
 * inside the repository, every command shown is one `devstats` has, every source has its page, and
 * docs/configuration.md is what the schemas say.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

function markdownFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(join(ROOT, path)).isDirectory()) return markdownFiles(path);
    return entry.endsWith('.md') ? [path] : [];
  });
}
const PAGES = ['README.md', ...markdownFiles('docs')];

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');

function anchorsOf(path: string): Set<string> {
  const text = read(path).replace(/```[\s\S]*?```/g, '');
  return new Set([...text.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => slug(m[1] ?? '')));
}

/** Links outside fenced blocks and inline code: `[text](target)`. */
function linksOf(path: string): string[] {
  const text = read(path)
    .replace(/```[\s\S]*?```/g, '')
    .replace(/`[^`\n]*`/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] ?? '');
}

describe('the documentation', () => {
  test('README.md is at most 200 lines and starts with the two commands', () => {
    const readme = read('README.md');
    assert.ok(readme.split('\n').length <= 200, `${String(readme.split('\n').length)} lines`);
    const first = /```sh\n(.*)\n(.*)\n```/.exec(readme);
    assert.match(first?.[1] ?? '', /^npm ci && npm start/);
    assert.match(first?.[2] ?? '', /^npm ci && npm test/);
  });

  test('every relative link and anchor resolves, inside the repository', () => {
    const broken: string[] = [];
    for (const page of PAGES) {
      for (const link of linksOf(page)) {
        if (/^[a-z]+:/.test(link)) continue; // https:, mailto:
        const [target = '', anchor] = link.split('#');
        const file = target === '' ? page : relative(ROOT, resolve(ROOT, dirname(page), target));
        if (file.startsWith('..')) broken.push(`${page}: ${link} leaves the repository`);
        else if (!existsSync(join(ROOT, file))) broken.push(`${page}: ${link} (no ${file})`);
        else if (anchor !== undefined && file.endsWith('.md') && !anchorsOf(file).has(anchor))
          broken.push(`${page}: ${link} (no heading #${anchor} in ${file})`);
      }
    }
    assert.deepEqual(broken, []);
  });

  test('every devstats command shown in a fenced block is one `devstats --help` lists', async () => {
    const usage: string[] = [];
    await cli(['--help'], {}, (line) => usage.push(line));
    const commands = new Set([...usage.join('\n').matchAll(/^ {2}([a-z]+)/gm)].map((m) => m[1]));
    const shown = PAGES.flatMap((page) =>
      [...read(page).matchAll(/```[a-z]*\n([\s\S]*?)```/g)].flatMap((block) =>
        [...(block[1] ?? '').matchAll(/(?:npm run devstats --|(?:^|\s)devstats) ([a-z-]+)/gm)].map((m) => [page, m[1]]),
      ),
    );
    assert.ok(shown.length > 10, `${String(shown.length)} commands shown`);
    assert.deepEqual(
      shown.filter(([, command]) => !commands.has(command)),
      [],
    );
  });

  test('every source has its page: what to configure, a snippet, and how to verify', () => {
    const page = (name: string) => `docs/sources/${name === 'ci' ? 'deployments' : name}.md`;
    for (const source of [...WEBHOOK_SOURCES, ...TOPIC_SOURCES.filter((s) => s.name !== 'github_history')]) {
      const text = read(page(source.name));
      assert.match(text, /^## Configure$/m, `${source.name}: Configure`);
      assert.match(text, /^## Verify$/m, `${source.name}: Verify`);
      assert.match(text, /```/, `${source.name}: a snippet`);
      assert.ok(read('README.md').includes(`](${page(source.name)})`), `${source.name}: linked from the README`);
    }
  });

  test('docs/configuration.md is generated from the schemas, and every field has its meaning', async () => {
    assert.equal(read('docs/configuration.md'), await configurationDoc(), 'run `npm run docs`');
    const fields = settingFields().map((f) => f.path);
    assert.deepEqual(
      fields.filter((f) => SETTING_MEANINGS[f] === undefined),
      [],
      'fields without a meaning',
    );
    assert.deepEqual(
      Object.keys(SETTING_MEANINGS).filter((f) => !fields.includes(f)),
      [],
      'meanings of fields that are gone',
    );
    const variables = envVariables().map((v) => v.name);
    assert.deepEqual(
      variables.filter((v) => ENV_MEANINGS[v] === undefined),
      [],
      'variables without a meaning',
    );
    assert.deepEqual(
      Object.keys(ENV_MEANINGS).filter((v) => !variables.includes(v)),
      [],
      'meanings of variables gone',
    );
  });

  test('`npm install -g .` gives a working devstats command, without a build', () => {
    const prefix = mkdtempSync(join(tmpdir(), 'devstats-global-'));
    try {
      execFileSync('npm', ['install', '-g', '.', '--prefix', prefix, '--ignore-scripts', '--no-audit', '--no-fund'], {
        cwd: ROOT,
        stdio: 'pipe',
      });
      const help = execFileSync(join(prefix, 'bin', 'devstats'), ['teams', '--help'], { encoding: 'utf8' });
      assert.match(help, /^usage: devstats teams/);
    } finally {
      rmSync(prefix, { recursive: true, force: true });
    }
  });
});
