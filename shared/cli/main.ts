#!/usr/bin/env node
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { type Config, loadConfig } from '../pipeline/config.ts';
import { ConfigError } from '../config-error.ts';
import { dashboardFor } from '../export/dashboard.ts';
import { type EventKind, utc } from '../events/model.ts';
import { createLogger } from '../log.ts';
import { buildReport, dayRange, previousPeriod, quarter } from '../report/figures.ts';
import { renderHtml, renderMarkdown } from '../report/render.ts';
import { backfillSource, progressPrinter } from '../backfill/core.ts';
import { BACKFILL_SOURCES, historySource } from '../backfill/sources.ts';
import { githubClient } from '../github/client.ts';
import { parseHooks, redeliverFailed } from '../github/redeliver.ts';
import { DEMO_SETTINGS_YAML, demoHistory, demoSecrets, runDemo as loadDemo } from './demo.ts';
import { doctor } from './doctor.ts';
import { liveReport } from '../report/live.ts';
import { replayEmbedded, replayPubSub } from './replay.ts';
import { createProcessor } from '../pipeline/process.ts';
import { rollup } from '../pipeline/rollup.ts';
import { loadSettings, type Settings } from '../events/settings.ts';
import { pushDashboard } from '../export/datadog-api.ts';
import { exporterFor } from '../pipeline/wiring.ts';
import { openStore } from '../store/open.ts';
import type { EventFilter, Store } from '../store/store.ts';

const USAGE = `usage: devstats <command>

commands:
  events [--kind deploy|commit|pull_request|push] [--since ISO-8601] [--json]
         what the store holds, oldest first (the first place to look when a dashboard shows no data)
  report (--quarter 2026-Q3 | --from YYYY-MM-DD --to YYYY-MM-DD) [--compare previous|<quarter>]
         [--team <name>]... [--format html|md|json] [--out <file>] [--annotations <file.json|yaml>]
         the quarterly roadmap review: this period against the last, per team, and what moved it
  dashboard push [--file infra/dashboard.json]
         create or update the DevStats dashboard in Datadog (by title; needs DD_API_KEY and DD_APP_KEY)
  rollup [--json]
         one rollup now: retry unfinished exports, publish today's gauges per team (as the scheduled rollup does)
  events --failed [--json]
         exports Datadog refused for good (a 400), parked with the reason: sent again only by replay
  backfill <github|spinnaker|terraform|circleci|cloudbuild|all> [--since ISO] [--until ISO]
         [--repository owner/name]... [--application app]... [--dry-run]
         the history the sources still hold, through the same normalisers as live deliveries (stored
         once), resumable; then a rollup
  redeliver github [--since ISO-8601] [--dry-run]
         ask GitHub to redeliver the failed deliveries of the hooks in DEVSTATS_GITHUB_HOOKS (GITHUB_TOKEN:
         a token that administers the hooks; GitHub never retries a failed delivery by itself)
  demo [--from YYYY-MM-DD] [--to-datadog]
         load a generated two-quarter history (three teams, bots, failures, rollbacks, a hotfix branch,
         incidents) through ingest and process, so the live view, the outbox and the report have data
  doctor [--json]
         check the configuration, each source's secret, the Datadog key, the Pub/Sub topics and
         subscriptions and each source's last delivery, and say what to fix
  replay [--source S] [--since ISO-8601] [--dry-run]
         send the dead letters again (the embedded queue's, or Pub/Sub's dead-letter subscription), and
         give parked exports another try; what was stored already is stored once
`;

const KINDS: readonly EventKind[] = ['deploy', 'commit', 'pull_request', 'push', 'incident'];

export async function main(
  argv: string[],
  env: Record<string, string | undefined>,
  out: (line: string) => void,
): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'rollup') return runRollup(rest, env, out);
  if (command === 'report') return runReport(rest, env, out);
  if (command === 'dashboard' && rest[0] === 'push') return runDashboardPush(rest.slice(1), env, out);
  if (command === 'replay') return runReplay(rest, env, out);
  if (command === 'demo') return runDemo(rest, env, out);
  if (command === 'doctor') return runDoctor(rest, env, out);
  if (command === 'backfill') return runBackfill(rest, env, out);
  if (command === 'redeliver' && rest[0] === 'github') return runRedeliver(rest.slice(1), env, out);
  if (command === 'events' && rest.includes('--failed')) return runFailed(rest, env, out);
  if (command !== 'events') {
    out(USAGE);
    return command === undefined || command === '--help' ? 0 : 64;
  }
  const { values } = parseArgs({
    args: rest,
    options: { kind: { type: 'string' }, since: { type: 'string' }, json: { type: 'boolean', default: false } },
    strict: true,
  });
  const filter: EventFilter = {};
  if (values.kind !== undefined) {
    if (!KINDS.includes(values.kind as EventKind)) throw new ConfigError(`--kind must be one of ${KINDS.join(', ')}`);
    filter.kind = values.kind as EventKind;
  }
  if (values.since !== undefined) filter.since = utc(values.since);

  return withStore(env, async ({ store }) => {
    const events = await store.events(filter);
    for (const event of events) {
      if (values.json) {
        out(JSON.stringify(event));
      } else {
        const what =
          event.kind === 'deploy'
            ? `${event.service} → ${event.environment} ${event.status} (${event.source}${event.commitSha ? ' ' + event.commitSha.slice(0, 7) : ''})`
            : event.kind === 'commit'
              ? `${event.repository}@${event.sha.slice(0, 7)} by ${event.authorLogin ?? event.authorName}${event.isBot ? ' [bot]' : ''}`
              : event.kind === 'pull_request'
                ? `${event.repository}#${event.number} merged as ${event.mergeCommitSha.slice(0, 7)}`
                : event.kind === 'push'
                  ? `${event.repository} ${event.branch} ${event.before.slice(0, 7)}..${event.after.slice(0, 7)} (${event.commitShas.length} commits)`
                  : `${event.service ?? '(no service)'} ${event.environment} ${event.state}${event.resolvedAt ? ` at ${event.resolvedAt}` : ''} (${event.source})`;
        out(`${event.kind.padEnd(12)} ${event.id}  ${what}`);
      }
    }
    if (!values.json) out(`${events.length} event${events.length === 1 ? '' : 's'}`);
  });
}

/** Opens the configured store for one command, and closes it however the command ends. */
async function withStore(
  env: Record<string, string | undefined>,
  work: (context: { store: Store; config: Config; settings: Settings }) => Promise<void>,
): Promise<number> {
  const config = loadConfig(env);
  const settings = loadSettings(config.settingsPath);
  const store = await openStore(config);
  try {
    await work({ store, config, settings });
  } finally {
    await store.close();
  }
  return 0;
}

const Annotations = z.array(z.object({ date: z.iso.date(), label: z.string().min(1) }));

async function runReport(
  args: string[],
  env: Record<string, string | undefined>,
  out: (line: string) => void,
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      quarter: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      compare: { type: 'string', default: 'previous' },
      team: { type: 'string', multiple: true },
      format: { type: 'string' },
      out: { type: 'string' },
      annotations: { type: 'string' },
    },
    strict: true,
  });
  const period =
    values.quarter !== undefined
      ? quarter(values.quarter)
      : values.from !== undefined && values.to !== undefined
        ? dayRange(values.from, values.to)
        : undefined;
  if (period === undefined) throw new ConfigError('report needs --quarter, or --from and --to');
  const comparison = values.compare === 'previous' ? previousPeriod(period) : quarter(values.compare);
  const format =
    values.format ?? (values.out?.endsWith('.html') ? 'html' : values.out?.endsWith('.json') ? 'json' : 'md');
  if (!['html', 'md', 'json'].includes(format)) throw new ConfigError('--format must be html, md or json');
  let annotations: Array<{ date: string; label: string }> = [];
  if (values.annotations !== undefined) {
    const text = readFileSync(values.annotations, 'utf8');
    const parsed = Annotations.safeParse(/\.ya?ml$/i.test(values.annotations) ? parseYaml(text) : JSON.parse(text));
    if (!parsed.success)
      throw new ConfigError(
        `${values.annotations}: ${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? 'invalid'} (expected [{date: YYYY-MM-DD, label}])`,
      );
    annotations = parsed.data;
  }
  return withStore(env, async ({ store, settings }) => {
    const report = await buildReport(store, settings, { period, comparison, teams: values.team ?? [], annotations });
    const text =
      format === 'json'
        ? JSON.stringify(report, null, 2)
        : format === 'html'
          ? renderHtml(report)
          : renderMarkdown(report);
    if (values.out !== undefined) {
      writeFileSync(values.out, text);
      out(
        `wrote ${values.out} (${format}, ${report.teams.length} teams, ${report.period.label} against ${report.comparison.label})`,
      );
    } else {
      out(text);
    }
  });
}

async function runDashboardPush(
  args: string[],
  env: Record<string, string | undefined>,
  out: (line: string) => void,
): Promise<number> {
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
}

async function runFailed(
  args: string[],
  env: Record<string, string | undefined>,
  out: (line: string) => void,
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { failed: { type: 'boolean' }, json: { type: 'boolean', default: false } },
    strict: true,
  });
  return withStore(env, async ({ store }) => {
    const parked = await store.parkedExports(10_000);
    for (const p of parked) out(values.json ? JSON.stringify(p) : `${p.kind.padEnd(8)} ${p.id}  ${p.at}  ${p.reason}`);
    if (!values.json)
      out(`${parked.length} parked export${parked.length === 1 ? '' : 's'} (devstats replay tries them again)`);
  });
}

async function runReplay(
  args: string[],
  env: Record<string, string | undefined>,
  out: (line: string) => void,
): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      source: { type: 'string' },
      since: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      wait: { type: 'string', default: '5' },
    },
    strict: true,
  });
  const filter = { source: values.source, since: values.since === undefined ? undefined : utc(values.since) };
  const dryRun = values['dry-run'];
  const logger = createLogger(() => undefined);
  return withStore(env, async ({ store, settings, config }) => {
    let result;
    if (config.bus === 'pubsub') {
      const { PubSubBus } = await import('../bus/pubsub.ts');
      const bus = new PubSubBus({ projectId: config.projectId, publishTimeoutMs: config.publishTimeoutMs });
      try {
        result = await replayPubSub(
          bus,
          {
            subscription: config.deadLetterSubscription,
            rawTopic: config.rawTopic,
            pubsubSources: settings.pubsubSources,
            waitMs: Number(values.wait) * 1000,
          },
          filter,
          dryRun,
        );
      } finally {
        await bus.close();
      }
    } else {
      const { SqliteQueueBus } = await import('../bus/sqlite-queue.ts');
      const queue = new SqliteQueueBus({ path: join(config.dataDir, 'queue.sqlite'), logger });
      try {
        result = await replayEmbedded(queue, filter, dryRun);
      } finally {
        await queue.close();
      }
    }
    for (const line of result.lines)
      out(
        `${dryRun ? 'would send' : 'sent'} ${line.source.padEnd(10)} ${line.deliveryId}  received ${line.receivedAt}, ${line.attempts} attempts${line.error ? `: ${line.error}` : ''}`,
      );
    out(`${result.lines.length} of ${result.found} dead letters ${dryRun ? 'would be sent' : 'sent'} again`);
    const parked = await store.parkedExports(10_000);
    if (dryRun) {
      out(`${parked.length} parked exports would be tried again`);
      return;
    }
    const unparked = await store.unparkExports();
    if (unparked > 0) {
      const { exporter } = exporterFor(store, config, settings, logger);
      await exporter.retryPending();
      const still = (await store.parkedExports(10_000)).length;
      out(`${unparked} parked exports tried again: ${unparked - still} sent, ${still} refused again`);
    }
  });
}

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
    const processMessage = createProcessor({ store, settings, logger, exporter });
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

async function runRedeliver(
  args: string[],
  env: Record<string, string | undefined>,
  out: (line: string) => void,
): Promise<number> {
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
}

async function runRollup(
  args: string[],
  env: Record<string, string | undefined>,
  out: (line: string) => void,
): Promise<number> {
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
}

async function runDemo(
  args: string[],
  env: Record<string, string | undefined>,
  out: (line: string) => void,
): Promise<number> {
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
      const processMessage = createProcessor({ store, exporter, settings, logger: quiet });
      const secrets = demoSecrets();
      const now = new Date();
      const deliveries = demoHistory(now, secrets, values.from === undefined ? {} : { from: values.from });
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
          `  ${team.team.padEnd(10)} ${report.period.label}: ${h.deployments} production deployments, ${h.deploysPerDeveloperPerDay?.toFixed(2) ?? '–'} deploys per developer per day, lead time p50 ${h.leadTimeP50 === null ? '–' : (h.leadTimeP50 / 3600).toFixed(1) + ' h'}, change failure rate ${h.changeFailureRate === null ? '–' : (h.changeFailureRate * 100).toFixed(1) + ' %'}`,
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
}

async function runDoctor(
  args: string[],
  env: Record<string, string | undefined>,
  out: (line: string) => void,
): Promise<number> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean', default: false } }, strict: true });
  const checks = await doctor(env);
  if (values.json) for (const check of checks) out(JSON.stringify(check));
  else {
    for (const check of checks) {
      out(
        `${check.status === 'ok' ? 'ok  ' : check.status === 'warn' ? 'warn' : 'FAIL'}  ${check.name}: ${check.detail}`,
      );
      if (check.fix !== undefined) out(`      fix: ${check.fix}`);
    }
    const failed = checks.filter((c) => c.status === 'fail').length;
    const warned = checks.filter((c) => c.status === 'warn').length;
    out(`${checks.length} checks: ${checks.length - failed - warned} ok, ${warned} warnings, ${failed} failed`);
  }
  return checks.some((c) => c.status === 'fail') ? 1 : 0;
}

if (import.meta.main ?? process.argv[1] === new URL(import.meta.url).pathname) {
  main(process.argv.slice(2), process.env, (line) => process.stdout.write(line + '\n')).then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      process.stderr.write(`devstats: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode =
        error instanceof ConfigError || error instanceof RangeError || error instanceof TypeError ? 64 : 1;
    },
  );
}
