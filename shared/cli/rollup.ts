import { parseArgs } from 'node:util';
import { createLogger } from '../log.ts';
import { rollup } from '../pipeline/rollup.ts';
import { exporterFor } from '../pipeline/wiring.ts';

import { type Command, withStore } from './command.ts';

const runRollup: Command['run'] = async (args, env, out) => {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false } }, strict: true });
  const logger = createLogger(values.json ? () => undefined : out);
  return withStore(env, async ({ store, settings, config }) => {
    const { sink, exporter } = exporterFor(store, config, settings, logger);
    const result = await rollup({ store, sink, exporter, settings, logger, now: () => new Date() });
    if (values.json) out(JSON.stringify(result));
    else {
      for (const f of result.figures) {
        const perDeveloper = f.deploysPerDeveloperPerDay['7d'];
        out(
          `${f.team.padEnd(16)} developers ${String(f.developers).padStart(4)}  deploys 1d/7d/28d ${f.deploys['1d']}/${f.deploys['7d']}/${f.deploys['28d']}` +
            `  per developer per day (7d) ${perDeveloper === undefined ? '–' : perDeveloper.toFixed(3)}` +
            `  change failure rate ${f.changeFailureRate === undefined ? '–' : (f.changeFailureRate * 100).toFixed(1) + '%'}`,
        );
      }
    }
  });
};

export const rollupCommand: Command = {
  name: 'rollup',
  help: [
    {
      synopsis: ['rollup [--json]'],
      summary: [
        "one rollup now: retry unfinished exports, publish today's gauges per team (as the scheduled rollup does)",
      ],
    },
  ],
  examples: ['npm run devstats -- rollup'],
  run: runRollup,
};
