/**
 * The local live view (`GET /` under `npm start`): this quarter so far per team, with the report's
 * figures and charts (shared/report), the latest deliveries and what became of them, and each
 * source's last delivery. Rendered from the store on every request; the page reloads itself.
 */
import { type Config, hasSecret } from '../pipeline/config.ts';
import { SECRET_VARIABLES, type WebhookSource } from '../sources/registry.ts';
import type { JournalEntry } from '../pipeline/journal.ts';
import { buildReport, dayRange, daysIn, previousPeriod, quarter, type Report } from './figures.ts';
import { escapeHtml as esc, htmlTable, qualitySection, REPORT_STYLE, teamSection } from './render.ts';
import type { Settings } from '../events/settings.ts';
import type { EventStore } from '../store/store.ts';

const LIVE_REFRESH_SECONDS = 10;

/** Today's quarter up to today, in the reporting time zone, against the same number of days before. */
export async function liveReport(store: EventStore, settings: Settings, now: Date): Promise<Report> {
  const today = new Intl.DateTimeFormat('en-CA', { timeZone: settings.timezone }).format(now);
  const q = `${today.slice(0, 4)}-Q${Math.floor((Number(today.slice(5, 7)) - 1) / 3) + 1}`;
  const from = quarter(q).from;
  const period = { ...dayRange(from, today), label: `${q} so far` };
  const before = previousPeriod(period);
  return buildReport(store, settings, {
    period,
    comparison: { ...before, label: `the ${String(daysIn(before))} days before (${before.from} – ${before.to})` },
    now,
  });
}

interface LiveViewInput {
  report: Report;
  recent: readonly JournalEntry[];
  /** Deliveries refused since the process started, by source and reason (the journal's). */
  refusals?: ReadonlyArray<{ source: string; reason: string; count: number; examples: string[] }>;
  lastBySource: ReadonlyMap<string, JournalEntry>;
  /** Each source's last delivery as the store noted it (this run or any earlier one). */
  seen: Record<string, string>;
  config: Pick<Config, 'secrets' | 'secretFiles' | 'insecureDev'>;
  settings: Pick<Settings, 'pubsubSources'>;
  mode: string;
  now: Date;
}

const LIVE_STYLE = `
body { max-width: 260mm; }
table.deliveries td, table.deliveries th { text-align: left; }
.refused, .rejected, .unavailable { color: #b00020; } .duplicate { color: #8a6d00; } .stored, .accepted { color: #1b7a2f; }
`;

function ago(iso: string, now: Date): string {
  const seconds = Math.max(0, Math.round((now.getTime() - Date.parse(iso)) / 1000));
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172_800) return `${(seconds / 3600).toFixed(1)} h ago`;
  return `${(seconds / 86_400).toFixed(1)} d ago`;
}

function answerOf(entry: JournalEntry): string {
  if (entry.status === undefined) return 'from Pub/Sub';
  const answer = `${entry.status} ${entry.answer ?? ''}`.trim();
  return entry.detail === undefined ? answer : `${answer}: ${entry.detail}`;
}

const events = (n: number) => `${String(n)} event${n === 1 ? '' : 's'}`;

function processedOf(entry: JournalEntry): string {
  switch (entry.processed) {
    case undefined:
      return entry.answer === 'accepted' ? 'queued' : '–';
    case 'rejected':
      return `rejected: ${entry.processDetail ?? ''}`;
    case 'duplicate':
      return `duplicate (${events(entry.events ?? 0)} known already)`;
    case 'stored':
      return `stored (${events(entry.events ?? 0)})`;
  }
}

function deliveriesTable(recent: readonly JournalEntry[], now: Date): string {
  if (recent.length === 0) {
    return '<p class="empty-deliveries">No delivery since this process started. Send one, or load a history: <code>npm run devstats -- demo</code>.</p>';
  }
  const rows = recent.map((e) => {
    const status = e.processed ?? e.answer ?? '';
    return `<tr class="${esc(status)}"><td>${esc(ago(e.at, now))}</td><td>${esc(e.source)}</td><td>${esc(e.eventType ?? '')}</td><td><code>${esc(e.deliveryId ?? '')}</code></td><td>${esc(answerOf(e))}</td><td>${esc(processedOf(e))}</td></tr>`;
  });
  return `<table class="deliveries"><caption>The latest ${String(recent.length)} deliveries, newest first</caption><thead><tr><th scope="col">Received</th><th scope="col">Source</th><th scope="col">Event</th><th scope="col">Delivery</th><th scope="col">Answer</th><th scope="col">Processed</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function sourcesTable(input: LiveViewInput): string {
  const webhookSources = Object.keys(SECRET_VARIABLES) as WebhookSource[];
  const names = [
    ...new Set([
      ...webhookSources,
      ...Object.values(input.settings.pubsubSources),
      ...Object.keys(input.seen),
      ...[...input.lastBySource.keys()].filter((source) => !source.startsWith('/')),
    ]),
  ];
  const rows = names.map((source) => {
    const webhook = (webhookSources as string[]).includes(source);
    const secret = !webhook
      ? 'Pub/Sub topic'
      : hasSecret(input.config, source as WebhookSource)
        ? 'set'
        : input.config.insecureDev
          ? 'none (accepted unsigned)'
          : 'none (refused)';
    const last = input.lastBySource.get(source);
    const stored = input.seen[source];
    return [
      source,
      secret,
      last === undefined ? '–' : `${ago(last.at, input.now)}: ${answerOf(last)}`,
      stored === undefined ? 'never' : `${stored} (${ago(stored, input.now)})`,
    ];
  });
  return htmlTable(
    "Each source's last delivery",
    ['Source', 'Secret', 'Last delivery in this run', 'Last delivery processed (store)'],
    rows,
  );
}

function refusalsTable(input: LiveViewInput): string {
  const refusals = input.refusals ?? [];
  if (refusals.length === 0) return '<p class="no-refusals">No delivery refused since this process started.</p>';
  return htmlTable(
    'Deliveries refused since this process started, by reason',
    ['Source', 'Reason', 'Count', 'First examples'],
    refusals.map((r) => [r.source, r.reason, String(r.count), r.examples.join('; ')]),
  );
}

export function renderLiveView(input: LiveViewInput): string {
  const { report } = input;
  const teams = report.teams.map((team) => teamSection(report, team)).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${String(LIVE_REFRESH_SECONDS)}"><link rel="icon" href="data:,">
<title>DevStats live: ${esc(report.period.label)}</title><style>${REPORT_STYLE}${LIVE_STYLE}</style></head>
<body><h1>DevStats live: ${esc(report.period.label)}</h1>
<p class="meta">${esc(input.mode)} mode. Compared with ${esc(report.comparison.label)}. Days in ${esc(report.timezone)}. Rendered ${esc(input.now.toISOString())} from the store; reloads every ${String(LIVE_REFRESH_SECONDS)} s. The quarterly report: <code>npm run devstats -- report --quarter ${esc(report.period.label.slice(0, 7))}</code>.</p>
<h2>Deliveries</h2>
${deliveriesTable(input.recent, input.now)}
${sourcesTable(input)}
${refusalsTable(input)}
${teams}
${qualitySection(report)}
</body></html>
`;
}
