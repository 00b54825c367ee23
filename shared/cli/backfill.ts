import { parseArgs } from 'node:util';
import { ConfigError } from '../config-error.ts';
import { utc } from '../events/model.ts';
import { createLogger } from '../log.ts';
import { backfillSource, progressPrinter } from '../backfill/core.ts';
import { BACKFILL_SOURCES, historySource } from '../backfill/sources.ts';
import { enrichersFor } from '../pipeline/enrich.ts';
import { createProcessor } from '../pipeline/process.ts';
import { rollup } from '../pipeline/rollup.ts';
import { exporterFor } from '../pipeline/wiring.ts';

import { type Command, withStore } from './command.ts';

/** What a terminal line starts with when it redraws itself. */
const CLEAR_LINE = new RegExp(`^\r${String.fromCharCode(27)}\\[2K`);

async function runBackfill(
  args: string[],
  env: Record<string, string | undefined>,
  out: (line: string) => void,
  tty = process.stdout.isTTY,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      since: { type: 'string' },
      until: { type: 'string' },
      repository: { type: 'string', multiple: true },
      application: { type: 'string', multiple: true },
      'dry-run': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const [which] = positionals;
  const names = which === 'all' ? [...BACKFILL_SOURCES] : BACKFILL_SOURCES.filter((s) => s === which);
  if (names.length === 0) throw new ConfigError(`backfill takes one of ${BACKFILL_SOURCES.join(', ')} or all`);
  // By default the two quarters before now: the first review has a quarter to compare against.
  const window = {
    since: utc(values.since ?? new Date(Date.now() - 183 * 86_400_000)),
    until: utc(values.until ?? new Date()),
    // The defaults differ on every run: an interrupted run is found again by how the command named them.
    ...(values.since !== undefined && values.until !== undefined
      ? {}
      : {
          named: `${values.since === undefined ? 'default' : utc(values.since)}|${values.until === undefined ? 'now' : utc(values.until)}`,
        }),
  };
  const dryRun = values['dry-run'];
  const logger = createLogger(() => undefined);
  let partial = '';
  const progress = progressPrinter((text) => {
    // On a terminal the line is redrawn; a finished line goes out whole.
    if (tty && !text.endsWith('\n')) process.stdout.write(text);
    else {
      partial += text;
      for (const line of partial.split('\n').slice(0, -1)) out(line.replace(CLEAR_LINE, ''));
      partial = partial.split('\n').at(-1) ?? '';
    }
  }, tty);
  let failed = false;
  const code = await withStore(env, async ({ store, settings, config }) => {
    const { sink, exporter } = exporterFor(store, config, settings, logger);
    // The same lookups as `process`: a Terraform run's sha, a divided repository's commit files.
    const processMessage = createProcessor({ store, settings, logger, exporter, enrichers: enrichersFor(config) });
    const totals: Record<string, number> = {};
    for (const name of names) {
      const made = await historySource(
        name,
        config,
        settings,
        { repositories: values.repository ?? [], applications: values.application ?? [] },
        logger,
      );
      if ('missing' in made) {
        if (which !== 'all') throw new ConfigError(`backfill ${name} needs ${made.missing}`);
        out(`${name}: skipped (not configured: ${made.missing})`);
        continue;
      }
      const tally = await backfillSource(
        made.source,
        window,
        { store, settings, logger, processMessage, progress, now: () => new Date() },
        { dryRun, waits: made.waits },
      );
      for (const [kind, n] of Object.entries(tally.stored)) totals[kind] = (totals[kind] ?? 0) + n;
      if (tally.stoppedBecause !== undefined) failed = true;
    }
    const summary = Object.entries(totals)
      .map(([kind, n]) => `${n} ${kind}${n === 1 ? '' : 's'}`)
      .join(', ');
    out(`${dryRun ? 'would store' : 'stored'} ${summary || 'nothing new'} (${window.since} to ${window.until})`);
    if (!dryRun) {
      const result = await rollup({ store, sink, exporter, settings, logger, now: () => new Date() });
      out(`rollup: ${result.figures.length} teams' figures published`);
    }
  });
  return failed ? 1 : code;
}

export const backfillCommand: Command = {
  name: 'backfill',
  help: [
    {
      synopsis: [
        'backfill <github|spinnaker|terraform|circleci|cloudbuild|pagerduty|opsgenie|all> [--since ISO] [--until ISO]',
        '[--repository owner/name]... [--application app]... [--dry-run]',
      ],
      summary: [
        'the history the sources still hold, through the same normalisers as live deliveries (stored',
        'once), resumable; then a rollup',
      ],
    },
  ],
  examples: [
    'npm run devstats -- backfill github --repository acme/billing --since 2026-07-01T00:00:00Z',
    'PAGERDUTY_API_TOKEN=… npm run devstats -- backfill pagerduty --since 2026-07-01T00:00:00Z',
  ],
  run: runBackfill,
};
