import { parseArgs } from 'node:util';
import { ConfigError } from '../config-error.ts';
import { type EventKind, utc } from '../events/model.ts';
import type { EventFilter } from '../store/store.ts';

import { type Command, withStore } from './command.ts';

const KINDS: readonly EventKind[] = ['deploy', 'commit', 'pull_request', 'push', 'incident'];

const runEvents: Command['run'] = async (args, env, out) => {
  if (args.includes('--failed')) return runFailed(args, env, out);
  const { values } = parseArgs({
    args,
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
};

const runFailed: Command['run'] = async (args, env, out) => {
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
};

export const eventsCommand: Command = {
  name: 'events',
  help: [
    {
      synopsis: ['events [--kind deploy|commit|pull_request|push] [--since ISO-8601] [--json]'],
      summary: ['what the store holds, oldest first (the first place to look when a dashboard shows no data)'],
    },
    {
      synopsis: ['events --failed [--json]'],
      summary: ['exports Datadog refused for good (a 400), parked with the reason: sent again only by replay'],
    },
  ],
  examples: [
    'npm run devstats -- events --kind deploy --since 2026-11-01T00:00:00Z',
    'npm run devstats -- events --failed',
  ],
  run: runEvents,
};
