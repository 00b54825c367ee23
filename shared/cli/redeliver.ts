import { parseArgs } from 'node:util';
import { loadConfig } from '../pipeline/config.ts';
import { ConfigError } from '../config-error.ts';
import { utc } from '../events/model.ts';
import { createLogger } from '../log.ts';
import { githubClient } from '../github/client.ts';
import { parseHooks, redeliverFailed } from '../github/redeliver.ts';

import type { Command } from './command.ts';

const runRedeliver: Command['run'] = async (args, env, out) => {
  const { values } = parseArgs({
    args,
    options: { since: { type: 'string' }, 'dry-run': { type: 'boolean', default: false } },
    strict: true,
  });
  const config = loadConfig(env);
  const hooks = parseHooks(config.github.hooks);
  if (config.github.token === undefined)
    throw new ConfigError('redeliver github needs GITHUB_TOKEN (a token that administers the hooks)');
  if (hooks.length === 0)
    throw new ConfigError('redeliver github needs DEVSTATS_GITHUB_HOOKS (repo:<owner>/<name>:<hook id>,…)');
  const since = utc(values.since ?? new Date(Date.now() - 24 * 3600_000));
  const logger = createLogger(() => undefined);
  const octokit = await githubClient({ token: config.github.token, baseUrl: config.github.apiUrl, logger });
  const results = await redeliverFailed(octokit, hooks, { since, dryRun: values['dry-run'], logger });
  for (const r of results)
    out(
      `${r.hook}: ${r.listed} deliveries since ${since}, ${r.failed} failed, ${values['dry-run'] ? `${r.failed} would be` : r.redelivered} redelivered`,
    );
  return 0;
};

export const redeliverCommand: Command = {
  name: 'redeliver',
  help: [
    {
      synopsis: ['redeliver github [--since ISO-8601] [--dry-run]'],
      summary: [
        'ask GitHub to redeliver the failed deliveries of the hooks in DEVSTATS_GITHUB_HOOKS (GITHUB_TOKEN:',
        'a token that administers the hooks; GitHub never retries a failed delivery by itself)',
      ],
    },
  ],
  examples: ['npm run devstats -- redeliver github --since 2026-12-01T00:00:00Z --dry-run'],
  run: (args, env, out) => {
    if (args[0] !== 'github')
      throw new ConfigError('redeliver takes github: devstats redeliver github [--since ISO-8601] [--dry-run]');
    return runRedeliver(args.slice(1), env, out);
  },
};
