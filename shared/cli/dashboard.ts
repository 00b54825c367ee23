import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../pipeline/config.ts';
import { ConfigError } from '../config-error.ts';
import { dashboardFor } from '../export/dashboard.ts';
import { createLogger } from '../log.ts';
import { loadSettings } from '../events/settings-file.ts';
import { pushDashboard } from '../export/datadog-api.ts';

import type { Command } from './command.ts';

const runDashboardPush: Command['run'] = async (args, env, out) => {
  const { values } = parseArgs({
    args,
    options: { file: { type: 'string', default: 'infra/dashboard.json' } },
    strict: true,
  });
  const config = loadConfig(env);
  const settings = loadSettings(config.settingsPath);
  const dashboard = dashboardFor(
    JSON.parse(readFileSync(values.file, 'utf8')) as Record<string, unknown> & { title: string },
    settings,
  );
  const result = await pushDashboard(
    config.datadog,
    createLogger(() => undefined),
    dashboard,
  );
  out(
    `${result.action} "${dashboard.title}" (${result.id})${result.url ? ` https://app.${config.datadog.site}${result.url}` : ''}`,
  );
  return 0;
};

export const dashboardCommand: Command = {
  name: 'dashboard',
  help: [
    {
      synopsis: ['dashboard push [--file infra/dashboard.json]'],
      summary: ['create or update the DevStats dashboard in Datadog (by title; needs DD_API_KEY and DD_APP_KEY)'],
    },
  ],
  examples: ['npm run devstats -- dashboard push'],
  run: (args, env, out) => {
    if (args[0] !== 'push')
      throw new ConfigError('dashboard takes push: devstats dashboard push [--file infra/dashboard.json]');
    return runDashboardPush(args.slice(1), env, out);
  },
};
