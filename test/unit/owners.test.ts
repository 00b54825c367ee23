import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main as cli } from '../../shared/cli/main.ts';
import { codeownersMatcher, codeownersOf, isChangeOf } from '../../shared/events/ownership.ts';
import { type Settings, teamOf } from '../../shared/events/settings.ts';
import { loadSettings } from '../../shared/events/settings-file.ts';
import { developersIn, teamScopes } from '../../shared/metrics/definitions.ts';
import type { Commit } from '../../shared/events/model.ts';

/*
 * Teams from where they are already written (issue 28): a CODEOWNERS file of acme/infra and a
 * folder of Backstage catalog files, under one explicit team. GitHub's rule: the last matching
 * pattern wins.
 */
const CODEOWNERS = `# Platform owns everything not said otherwise
*                      @acme/platform
/terraform/billing/    @acme/payments
/terraform/checkout/   @acme/payments @alice
modules/payments/      @acme/payments
/docs/                 @alice
*.md                   docs@acme.test
`;

describe('owners: CODEOWNERS and Backstage become teams; teams: entries override', () => {
  let dir: string;
  let settings: Settings;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'devstats-owners-'));
    writeFileSync(join(dir, 'CODEOWNERS'), CODEOWNERS);
    mkdirSync(join(dir, 'catalog', 'search'), { recursive: true });
    writeFileSync(
      join(dir, 'catalog', 'search', 'catalog-info.yaml'),
      [
        'apiVersion: backstage.io/v1alpha1',
        'kind: Component',
        'metadata:',
        '  name: search',
        '  annotations:',
        '    github.com/project-slug: acme/search',
        'spec:',
        '  type: service',
        '  owner: group:default/discovery',
        '---',
        'apiVersion: backstage.io/v1alpha1',
        'kind: Component',
        'metadata:',
        '  name: ledger',
        '  annotations:',
        '    backstage.io/source-location: url:https://github.com/acme/mono/tree/main/services/ledger/',
        'spec:',
        '  owner: payments',
        '---',
        'apiVersion: backstage.io/v1alpha1',
        'kind: Group',
        'metadata: { name: discovery }',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'devstats.yaml'),
      [
        'owners:',
        '  codeowners: CODEOWNERS',
        '  repository: acme/infra',
        '  backstage: catalog',
        'services:',
        '  billing: { repository: acme/infra, paths: ["terraform/billing/**"] }',
        '  network: { repository: acme/infra, paths: ["terraform/network/**", "modules/vpc/**"] }',
        'teams:',
        '  web: { services: [storefront], repositories: [acme/storefront] }',
        '',
      ].join('\n'),
    );
    settings = loadSettings(join(dir, 'devstats.yaml'));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('CODEOWNERS patterns as GitHub reads them', () => {
    const match = (pattern: string, path: string) => codeownersMatcher(pattern)(path);
    assert.equal(match('*', 'a/b/c.tf'), true);
    assert.equal(match('/terraform/billing/', 'terraform/billing/main.tf'), true);
    assert.equal(match('/terraform/billing/', 'x/terraform/billing/main.tf'), false, 'anchored');
    assert.equal(match('modules/payments/', 'modules/payments/a/b.tf'), true);
    assert.equal(match('*.md', 'docs/deep/readme.md'), true, 'no slash: any depth');
    assert.equal(match('docs', 'docs/a.md'), true, 'a directory without its slash');
    assert.equal(match('/build/logs/', 'build/logs/x/y.log'), true);
    // The last matching pattern wins.
    assert.deepEqual(codeownersOf(settings, 'acme/infra', 'terraform/checkout/main.tf'), ['@acme/payments', '@alice']);
    assert.deepEqual(codeownersOf(settings, 'acme/infra', 'modules/vpc/main.tf'), ['@acme/platform']);
    assert.deepEqual(codeownersOf(settings, 'acme/infra', 'docs/runbook.md'), ['docs@acme.test']);
  });

  test('services take their teams: billing payments by CODEOWNERS, network platform, Backstage search discovery and ledger payments by its folder', () => {
    assert.deepEqual(
      ['billing', 'network', 'search', 'ledger', 'storefront'].map((s) => teamOf(settings, s)),
      ['payments', 'platform', 'discovery', 'payments', 'web'],
    );
    assert.equal(isChangeOf(settings, 'ledger', { repository: 'acme/mono', paths: ['services/ledger/app.py'] }), true);
    assert.equal(isChangeOf(settings, 'ledger', { repository: 'acme/mono', paths: ['services/cart/app.py'] }), false);
  });

  test("a commit counts for the teams that own its files: CODEOWNERS' last match, the path services'", () => {
    const commit = (login: string, paths: string[] | undefined): Commit => ({
      kind: 'commit',
      id: `acme/infra@${login}`,
      repository: 'acme/infra',
      branch: 'main',
      sha: login,
      authorLogin: login,
      authorName: login,
      timestamp: '2026-11-20T09:00:00.000Z',
      isBot: false,
      ...(paths === undefined ? {} : { paths }),
    });
    const commits = [
      commit('ann', ['terraform/billing/main.tf']),
      commit('ben', ['modules/vpc/x.tf']),
      commit('cy', ['docs/runbook.md']), // owned by a user and an email: no team's
      commit('dee', undefined), // unknown: every team owning paths there
    ];
    const window = { from: '2026-11-20T00:00:00.000Z', to: '2026-11-21T00:00:00.000Z' };
    const developers = (team: string) =>
      [
        ...developersIn(
          settings,
          teamScopes(settings).find((s) => s.name === team)!,
          window,
          commits,
          [],
        ),
      ].sort();
    assert.deepEqual(developers('payments'), ['ann', 'dee']);
    assert.deepEqual(developers('platform'), ['ben', 'dee']);
    assert.deepEqual(developers('web'), []);
    assert.deepEqual(developers('all'), ['ann', 'ben', 'cy', 'dee']);
  });

  test('devstats teams prints the map, and what matched nothing', async () => {
    const lines: string[] = [];
    const code = await cli(['teams', '--json'], { DEVSTATS_CONFIG: join(dir, 'devstats.yaml') }, (l) => lines.push(l));
    assert.equal(code, 0);
    const map = JSON.parse(lines.join('')) as {
      teams: Array<{ team: string; services: Array<{ name: string }>; codeowners: Array<{ pattern: string }> }>;
      unmatched: { servicesWithoutTeam: string[]; ownersThatAreNoTeam: string[] };
    };
    assert.deepEqual(
      map.teams.map((t) => [t.team, t.services.map((s) => s.name), t.codeowners.map((c) => c.pattern)]),
      [
        ['discovery', ['search'], []],
        ['payments', ['billing', 'ledger'], ['/terraform/billing/', '/terraform/checkout/', 'modules/payments/']],
        ['platform', ['network'], ['*']],
        ['web', ['storefront'], []],
      ],
    );
    assert.deepEqual(map.unmatched, { servicesWithoutTeam: [], ownersThatAreNoTeam: ['@alice', 'docs@acme.test'] });
    const text: string[] = [];
    await cli(['teams'], { DEVSTATS_CONFIG: join(dir, 'devstats.yaml') }, (l) => text.push(l));
    assert.ok(text.includes('  service billing: acme/infra terraform/billing/**'), text.join('\n'));
  });
});
