import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../pipeline/config.ts';
import { ConfigError } from '../config-error.ts';
import { createLogger } from '../log.ts';
import { DEMO_SETTINGS_YAML, demoHistory, demoSecrets, runDemo as loadDemo } from './demo-history.ts';
import { liveReport } from '../report/live.ts';
import { createProcessor } from '../pipeline/process.ts';
import { rollup } from '../pipeline/rollup.ts';
import { exporterFor } from '../pipeline/wiring.ts';

import { type Command, withStore } from './command.ts';

const runDemo: Command['run'] = async (args, env, out) => {
  const { values } = parseArgs({
    args,
    options: { from: { type: 'string' }, 'to-datadog': { type: 'boolean', default: false } },
    strict: true,
  });
  const config = loadConfig(env);
  if (config.datadog.apiKey !== undefined && !values['to-datadog']) {
    throw new ConfigError(
      'DD_API_KEY is set: the demo history would go to that Datadog organisation. Unset it (the requests go to files), or pass --to-datadog',
    );
  }
  // Without a configuration file, the demo's teams are written next to the data and read from there.
  let settingsNote: string | undefined;
  if (config.settingsPath === undefined) {
    settingsNote = join(config.dataDir, 'demo.yaml');
    mkdirSync(config.dataDir, { recursive: true });
    writeFileSync(settingsNote, DEMO_SETTINGS_YAML);
  }
  const started = Date.now();
  return withStore(
    settingsNote === undefined ? env : { ...env, DEVSTATS_CONFIG: settingsNote },
    async ({ store, config, settings }) => {
      const quiet = createLogger(() => undefined);
      const { sink, exporter } = exporterFor(store, config, settings, quiet);
      const secrets = demoSecrets();
      const now = new Date();
      // HCP Terraform's runs API, as the demo's history would answer it: each run's commit and folder.
      const terraformRuns = new Map<string, { commitSha: string; repository: string; workingDirectory: string }>();
      const deliveries = demoHistory(now, secrets, {
        terraformRuns,
        ...(values.from === undefined ? {} : { from: values.from }),
      });
      const processMessage = createProcessor({
        store,
        exporter,
        settings,
        logger: quiet,
        enrichers: { terraformRun: (run) => Promise.resolve(terraformRuns.get(run)) },
      });
      out(
        `devstats demo: ${deliveries.length} deliveries from ${new Date(deliveries[0]?.at ?? now).toISOString().slice(0, 10)} to today, through ingest and process`,
      );
      let shown = 0;
      const result = await loadDemo({
        deliveries,
        secrets,
        config,
        settings,
        logger: quiet,
        processMessage,
        onDelivery: () => {
          if (++shown % 1000 === 0) out(`  ${shown} of ${deliveries.length}`);
        },
      });
      await rollup({ store, sink, exporter, settings, logger: quiet, now: () => new Date() });
      const answers = Object.entries(result.answers)
        .map(([reason, n]) => `${reason} ${n}`)
        .join(', ');
      out(
        `  answered: ${answers}; processed: ${result.stored} stored, ${result.duplicates} duplicates (stored before), ${result.rejected} rejected; ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
      const report = await liveReport(store, settings, now);
      for (const team of report.teams) {
        const h = team.current;
        out(
          `  ${team.team.padEnd(10)} ${report.period.label}: ${h.deployments} production deployments, ${h.deploysPerDeveloperPerDay?.toFixed(2) ?? '–'} deploys per developer per day, lead time p50 ${h.leadTimeP50 === null ? '–' : (h.leadTimeP50 / 3600).toFixed(1) + ' h'}, change failure rate ${h.changeFailureRate === null ? '–' : (h.changeFailureRate * 100).toFixed(1) + ' %'}, rework rate ${h.deploymentReworkRate === null ? '–' : (h.deploymentReworkRate * 100).toFixed(1) + ' %'}`,
        );
      }
      out('next:');
      if (settingsNote !== undefined)
        out(`  the demo's teams are in ${settingsNote}: start with DEVSTATS_CONFIG=${settingsNote}`);
      out(
        `  ${settingsNote === undefined ? '' : `DEVSTATS_CONFIG=${settingsNote} `}npm start   # then open http://localhost:8080/`,
      );
      out(
        `  ${settingsNote === undefined ? '' : `DEVSTATS_CONFIG=${settingsNote} `}npm run devstats -- report --quarter ${report.period.label.slice(0, 7)} --out report.html`,
      );
      out(`  ls ${join(config.dataDir, 'datadog')}   # what Datadog would have received`);
    },
  );
};

export const demoCommand: Command = {
  name: 'demo',
  help: [
    {
      synopsis: ['demo [--from YYYY-MM-DD] [--to-datadog]'],
      summary: [
        'load a generated two-quarter history (three teams, bots, failures, rollbacks, a hotfix branch,',
        'incidents) through ingest and process, so the live view, the outbox and the report have data',
      ],
    },
  ],
  examples: ['npm run devstats -- demo'],
  run: runDemo,
};
