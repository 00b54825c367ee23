import { parseArgs } from 'node:util';
import { teamSlug } from '../events/ownership.ts';
import { loadConfig } from '../pipeline/config.ts';
import { type Settings, teamOf } from '../events/settings.ts';
import { loadSettings } from '../events/settings-file.ts';
import type { Command } from './command.ts';

/**
 * `devstats teams`: the map the configuration makes, after `owners:` (CODEOWNERS, Backstage) and
 * `teams:` are merged: team → services (by name, or a repository and its paths) → repositories,
 * then what matched nothing (services with no team, owners that are no team). The first place to
 * look when a team's figures look wrong.
 */
export interface TeamMap {
  teams: Array<{
    team: string;
    services: Array<{ name: string; repository?: string; paths?: string[] }>;
    repositories: string[];
    codeowners: Array<{ repository: string; pattern: string }>;
    members: string[];
    headcount?: number;
  }>;
  unmatched: { servicesWithoutTeam: string[]; ownersThatAreNoTeam: string[] };
}

export function teamMap(settings: Settings): TeamMap {
  const names = new Set(Object.keys(settings.teams));
  for (const [name, s] of Object.entries(settings.services)) {
    const team = s.team ?? teamOf(settings, name);
    if (team !== undefined) names.add(team);
  }
  const teams = [...names].sort().map((team) => {
    const t = settings.teams[team] ?? { services: [], repositories: [], members: [] };
    const serviceNames = new Set([
      ...t.services,
      ...Object.entries(settings.services)
        .filter(([name, s]) => (s.team ?? teamOf(settings, name)) === team)
        .map(([name]) => name),
    ]);
    return {
      team,
      services: [...serviceNames].sort().map((name) => {
        const rule = settings.services[name];
        return rule === undefined ? { name } : { name, repository: rule.repository, paths: rule.paths };
      }),
      repositories: [...t.repositories].sort(),
      codeowners: settings.ownerRules
        .filter((r) => r.owners.some((o) => teamSlug(o) === team))
        .map((r) => ({ repository: r.repository, pattern: r.pattern })),
      members: t.members,
      ...(t.headcount !== undefined ? { headcount: t.headcount } : {}),
    };
  });
  return {
    teams,
    unmatched: {
      servicesWithoutTeam: Object.keys(settings.services)
        .filter((name) => (settings.services[name]?.team ?? teamOf(settings, name)) === undefined)
        .sort(),
      ownersThatAreNoTeam: [
        ...new Set(settings.ownerRules.flatMap((r) => r.owners.filter((o) => teamSlug(o) === undefined))),
      ].sort(),
    },
  };
}

const runTeams: Command['run'] = (args, env, out) => {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false } }, strict: true });
  const settings = loadSettings(loadConfig(env).settingsPath);
  const map = teamMap(settings);
  if (values.json) {
    out(JSON.stringify(map));
    return Promise.resolve(0);
  }
  if (map.teams.length === 0) out('no teams: every figure is for all (write teams: or owners: in DEVSTATS_CONFIG)');
  for (const team of map.teams) {
    out(`${team.team}${team.headcount !== undefined ? ` (headcount ${String(team.headcount)})` : ''}`);
    for (const s of team.services)
      out(`  service ${s.name}${s.repository !== undefined ? `: ${s.repository} ${(s.paths ?? []).join(' ')}` : ''}`);
    for (const r of team.repositories) out(`  repository ${r}`);
    for (const c of team.codeowners) out(`  CODEOWNERS ${c.repository} ${c.pattern}`);
    if (team.members.length > 0) out(`  members ${team.members.join(', ')}`);
  }
  out(`services with no team: ${map.unmatched.servicesWithoutTeam.join(', ') || 'none'}`);
  out(`CODEOWNERS owners that are no team (users, emails): ${map.unmatched.ownersThatAreNoTeam.join(', ') || 'none'}`);
  return Promise.resolve(0);
};

export const teamsCommand: Command = {
  name: 'teams',
  help: [
    {
      synopsis: ['teams [--json]'],
      summary: [
        'the team map the configuration makes (teams:, owners: CODEOWNERS and Backstage): team → services →',
        'repositories and paths, and what matched nothing',
      ],
    },
  ],
  examples: ['DEVSTATS_CONFIG=devstats.yaml npm run devstats -- teams'],
  run: runTeams,
};
