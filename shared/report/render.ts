import { TIER_SOURCE, type Tiers } from '../metrics/tiers.ts';
import { type Annotation, findingsOf, type Headline, type Report, type TeamReport, type WeekPoint } from './figures.ts';

type Row = {
  label: string;
  value: (h: Headline) => number | null;
  format: (n: number) => string;
  better: 'up' | 'down';
};

const hours = (seconds: number) =>
  seconds >= 172_800 ? `${(seconds / 86_400).toFixed(1)} d` : `${(seconds / 3600).toFixed(1)} h`;
const fixed = (digits: number) => (n: number) => n.toFixed(digits);
const percent = (n: number) => `${(n * 100).toFixed(1)} %`;

const LEAD_TIME_P50: Row = { label: 'Lead time p50', value: (h) => h.leadTimeP50, format: hours, better: 'down' };

/** Where the time goes (`stages` configured): shown only then. */
const PROMOTION_ROWS: Row[] = [
  { label: 'Commit → merged p50', value: (h) => h.promotion.commitToMergedP50, format: hours, better: 'down' },
  { label: 'Merged → first stage p50', value: (h) => h.promotion.mergedToFirstStageP50, format: hours, better: 'down' },
  {
    label: 'First stage → production p50',
    value: (h) => h.promotion.firstStageToProductionP50,
    format: hours,
    better: 'down',
  },
  {
    label: 'Lead time to the first stage p50',
    value: (h) => h.promotion.leadTimeToFirstStageP50,
    format: hours,
    better: 'down',
  },
  {
    label: 'Promotion time p50 (first stage → production, per deploy)',
    value: (h) => h.promotion.promotionTimeP50,
    format: hours,
    better: 'down',
  },
  {
    label: 'Deploys straight to production (no stage saw the sha)',
    value: (h) => h.promotion.straightToProduction,
    format: (n) => n.toFixed(0),
    better: 'down',
  },
];

const rowsOf = (report: Report): Row[] => (report.stages.length > 0 ? [...ROWS, ...PROMOTION_ROWS] : ROWS);

const ROWS: Row[] = [
  { label: 'Deploys per developer per day', value: (h) => h.deploysPerDeveloperPerDay, format: fixed(3), better: 'up' },
  { label: 'Deployments (production)', value: (h) => h.deployments, format: fixed(0), better: 'up' },
  {
    label: 'Deployment frequency (production deployments per day)',
    value: (h) => h.deploymentFrequency,
    format: fixed(2),
    better: 'up',
  },
  LEAD_TIME_P50,
  { label: 'Lead time p90', value: (h) => h.leadTimeP90, format: hours, better: 'down' },
  { label: 'Change failure rate', value: (h) => h.changeFailureRate, format: percent, better: 'down' },
  { label: 'Deployment rework rate', value: (h) => h.deploymentReworkRate, format: percent, better: 'down' },
  {
    label: 'Failed deployment recovery time p50',
    value: (h) => h.failedDeploymentRecoveryTimeP50,
    format: hours,
    better: 'down',
  },
  { label: 'Incident time to restore p50', value: (h) => h.incidentTimeToRestoreP50, format: hours, better: 'down' },
  { label: 'Incidents (production)', value: (h) => h.incidents.total, format: fixed(0), better: 'down' },
  { label: 'Incidents linked to no deploy', value: (h) => h.incidents.unlinked, format: fixed(0), better: 'down' },
  {
    label: 'Active developers (distinct in the period)',
    value: (h) => h.activeDevelopers,
    format: fixed(0),
    better: 'up',
  },
  {
    label: 'Active developers (daily mean)',
    value: (h) => h.activeDevelopersDailyMean,
    format: fixed(1),
    better: 'up',
  },
];

function change(current: number | null, previous: number | null, row: Row): string {
  if (current === null || previous === null) return '–';
  const delta = current - previous;
  if (delta === 0) return '=';
  const relative = previous !== 0 ? ` (${delta > 0 ? '+' : ''}${((delta / previous) * 100).toFixed(0)} %)` : '';
  const improved = delta > 0 === (row.better === 'up');
  return `${delta > 0 ? '▲' : '▼'} ${row.format(Math.abs(delta))}${relative}${improved ? ' better' : ' worse'}`;
}

const show = (value: number | null, row: Row) => (value === null ? '–' : row.format(value));

function headlineRows(report: Report, team: TeamReport): string[][] {
  const whole = team.comparisonWhole;
  return rowsOf(report).map((row) => [
    row.label,
    show(row.value(team.current), row),
    show(row.value(team.comparison), row),
    change(row.value(team.current), row.value(team.comparison), row),
    ...(whole === undefined ? [] : [show(row.value(whole), row)]),
  ]);
}

/** The headline table's columns: the period, what it is compared with, the change, and a whole period beside. */
function headlineHeader(report: Report): string[] {
  return [
    'Figure',
    report.period.label,
    report.comparison.label,
    'Change',
    ...(report.comparisonWhole === undefined ? [] : [`${report.comparisonWhole.label} (whole, for reference)`]),
  ];
}

function qualityLines(report: Report): string[] {
  const q = report.dataQuality;
  const sources = Object.entries(q.deploysBySource)
    .map(([source, n]) => `${source} ${n}`)
    .join(', ');
  return [
    `Deploys by source: ${sources || 'none'}; commits ${q.commits}; merged pull requests ${q.mergedPullRequests}.`,
    `Deploys without a commit sha (no lead time possible): ${q.deploysWithoutCommitSha}.`,
    `Deploys dated in the future of their receipt (counted nowhere): ${q.deploysDatedInTheFuture}.`,
    `Commits dated after their deploy (clock skew; lead time taken as 0): ${q.commitsDatedAfterTheirDeploy}.`,
    `Services that map to no team: ${q.servicesWithoutTeam.join(', ') || 'none'}.`,
    `Repositories whose commits map to no team: ${q.repositoriesWithoutTeam.join(', ') || 'none'}.`,
    `Sources silent longer than sourceSilenceHours: ${q.silentSources.map((s) => `${s.source} (last ${s.lastSeen})`).join(', ') || 'none'}.`,
    `Incidents with no known start (no time to restore): ${q.incidentsWithoutStart.join(', ') || 'none'}.`,
    `Commits of repositories divided by paths whose files are unknown (counted for all their services): ${String(q.commitsWithUnknownFiles.length)}${q.commitsWithUnknownFiles.length > 0 ? ` (${q.commitsWithUnknownFiles.slice(0, 3).join(', ')}${q.commitsWithUnknownFiles.length > 3 ? ', …' : ''})` : ''}.`,
    `Authors excluded as bots: ${q.botAuthorsExcluded.join(', ') || 'none'}.`,
    `Days with no deploy and no commit: ${q.daysWithoutData}.`,
  ];
}

/** The findings in one line each: `<count> <what>: <first examples>`, for the live view and doctor. */
export function findingLines(report: Report): string[] {
  return findingsOf(report.dataQuality).map(
    (f) =>
      `${String(f.count)} ${f.label}${f.examples.length > 0 ? `: ${f.examples.join(', ')}${f.count > f.examples.length ? ', …' : ''}` : ''}`,
  );
}

const TIER_ROWS: Array<[string, keyof Tiers]> = [
  ['Deployment frequency', 'deploymentFrequency'],
  ['Change lead time (p50)', 'leadTime'],
  ['Change failure rate', 'changeFailureRate'],
  ['Failed deployment recovery time (p50)', 'failedDeploymentRecoveryTime'],
];

const TIER_HEADER = (report: Report) => ['DORA metric', report.period.label, report.comparison.label];

function tierRows(team: TeamReport): string[][] {
  return TIER_ROWS.map(([label, key]) => [label, team.current.tiers[key] ?? '–', team.comparison.tiers[key] ?? '–']);
}

const REWORK_HEADER = ['Deploy', 'Service', 'Finished', 'Rule', 'What matched'];

function reworkRows(team: TeamReport): string[][] {
  return team.current.rework.map((r) => [r.deploy, r.service, r.finishedAt, r.rule.replace('_', ' '), r.detail]);
}

const WEEK_HEADER = ['Week ending', 'Deploys per developer per day (7 days)', 'Lead time p50'];

function weekRows(team: TeamReport): string[][] {
  return team.weekly.map((w) => [
    w.weekEnding,
    w.deploysPerDeveloperPerDay === null ? '–' : w.deploysPerDeveloperPerDay.toFixed(3),
    w.leadTimeP50 === null ? '–' : hours(w.leadTimeP50),
  ]);
}

function deployMoverRows(report: Report): string[][] {
  return report.movers.byDeploys.map((m) => [
    m.service,
    String(m.deploys.current),
    String(m.deploys.comparison),
    `${m.deploys.change > 0 ? '+' : ''}${m.deploys.change}`,
  ]);
}

function leadTimeMoverRows(report: Report): string[][] {
  return report.movers.byLeadTime.map((m) => [
    m.service,
    show(m.leadTimeP50.current, LEAD_TIME_P50),
    show(m.leadTimeP50.comparison, LEAD_TIME_P50),
    `${(m.leadTimeP50.change ?? 0) > 0 ? '+' : '−'}${hours(Math.abs(m.leadTimeP50.change ?? 0))}`,
  ]);
}

// ---- Markdown -----------------------------------------------------------------------------------

function mdTable(header: string[], rows: string[][]): string {
  const escape = (cell: string) => cell.replace(/\|/g, '\\|');
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.map(escape).join(' | ')} |`),
  ].join('\n');
}

/** A field of a CSV line (RFC 4180): quoted when it holds a comma, a quote or a line break. */
const csvField = (value: string) => (/[",\n\r]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value);

/**
 * The report's headline figures as CSV, for the spreadsheet a roadmap review ends up in: one line
 * per team, period and figure, with the value in its unit (seconds for times, a fraction for
 * rates) and as the HTML report shows it.
 */
export function renderCsv(report: Report): string {
  const unit = (row: Row) => (row.format === hours ? 'seconds' : row.format === percent ? 'fraction' : '');
  const lines = [['team', 'period', 'from', 'to', 'figure', 'value', 'unit', 'as shown']];
  for (const team of report.teams) {
    const periods: Array<[{ label: string; from: string; to: string }, Headline | undefined]> = [
      [report.period, team.current],
      [report.comparison, team.comparison],
      ...(report.comparisonWhole === undefined
        ? []
        : [[report.comparisonWhole, team.comparisonWhole] as [typeof report.period, Headline | undefined]]),
    ];
    for (const [period, headline] of periods) {
      if (headline === undefined) continue;
      for (const row of rowsOf(report)) {
        const value = row.value(headline);
        lines.push([
          team.team,
          period.label,
          period.from,
          period.to,
          row.label,
          value === null ? '' : String(value),
          unit(row),
          show(value, row),
        ]);
      }
      for (const [label, key] of TIER_ROWS) {
        const tier = headline.tiers[key];
        lines.push([
          team.team,
          period.label,
          period.from,
          period.to,
          `DORA level: ${label}`,
          tier ?? '',
          'level',
          tier ?? '–',
        ]);
      }
    }
  }
  return lines.map((fields) => fields.map(csvField).join(',')).join('\r\n') + '\r\n';
}

export function renderMarkdown(report: Report): string {
  const out: string[] = [
    `# Delivery report: ${report.period.label}`,
    '',
    `Compared with ${report.comparison.label}. Days in ${report.timezone}. Generated ${report.generatedAt}.`,
    '',
  ];
  for (const team of report.teams) {
    out.push(`## ${team.team === 'all' ? 'Organisation (all teams)' : `Team ${team.team}`}`, '');
    out.push(mdTable(headlineHeader(report), headlineRows(report, team)), '');
    out.push(`DORA performance levels (${TIER_SOURCE}):`, '', mdTable(TIER_HEADER(report), tierRows(team)), '');
    if (team.current.rework.length > 0)
      out.push('Unplanned deployments (rework), and why:', '', mdTable(REWORK_HEADER, reworkRows(team)), '');
    out.push(mdTable(WEEK_HEADER, weekRows(team)), '');
  }
  if (report.annotations.length > 0) {
    out.push('## Milestones', '', ...report.annotations.map((a) => `- ${a.date}: ${a.label}`), '');
  }
  out.push('## What moved most', '');
  out.push(
    report.movers.byDeploys.length === 0
      ? 'No service changed its deploy count.'
      : mdTable(['Service', 'Deploys', 'Before', 'Change'], deployMoverRows(report)),
    '',
  );
  if (report.movers.byLeadTime.length > 0) {
    out.push(mdTable(['Service', 'Lead time p50', 'Before', 'Change'], leadTimeMoverRows(report)), '');
  }
  out.push('## How far to trust these numbers', '', ...qualityLines(report).map((l) => `- ${l}`), '');
  return out.join('\n');
}

// ---- HTML ---------------------------------------------------------------------------------------

const esc = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c);

function htmlTable(caption: string, header: string[], rows: string[][]): string {
  return `<table><caption>${esc(caption)}</caption><thead><tr>${header.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map(
      (r) =>
        `<tr>${r.map((c, i) => (i === 0 ? `<th scope="row">${esc(c)}</th>` : `<td>${esc(c)}</td>`)).join('')}</tr>`,
    )
    .join('')}</tbody></table>`;
}

/** A weekly line chart as inline SVG, with the milestones drawn as dated markers. */
function chart(
  title: string,
  points: WeekPoint[],
  value: (p: WeekPoint) => number | null,
  format: (n: number) => string,
  annotations: Annotation[],
  period: { from: string; to: string },
): string {
  const width = 640;
  const height = 220;
  const pad = { left: 56, right: 16, top: 24, bottom: 36 };
  const values = points.map(value);
  const present = values.filter((v): v is number => v !== null);
  const max = present.length > 0 ? Math.max(...present) * 1.1 || 1 : 1;
  const start = Date.parse(period.from);
  const span = Math.max(1, Date.parse(period.to) - start);
  const x = (day: string) => pad.left + ((Date.parse(day) - start) / span) * (width - pad.left - pad.right);
  const y = (v: number) => height - pad.bottom - (v / max) * (height - pad.top - pad.bottom);
  const path = points
    .map((p, i) => [p, values[i]] as const)
    .filter(([, v]) => v !== null)
    .map(([p, v], i) => `${i === 0 ? 'M' : 'L'}${x(p.weekEnding).toFixed(1)},${y(v as number).toFixed(1)}`)
    .join(' ');
  const dots = points
    .map((p, i) => {
      const v = values[i];
      if (v === null || v === undefined) return '';
      return `<circle cx="${x(p.weekEnding).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3"><title>${esc(`${p.weekEnding}: ${format(v)}`)}</title></circle>`;
    })
    .join('');
  const markers = annotations
    .map((a) => {
      const ax = x(a.date).toFixed(1);
      return `<g class="marker"><line x1="${ax}" x2="${ax}" y1="${pad.top}" y2="${height - pad.bottom}"/><text x="${ax}" y="${pad.top - 6}" text-anchor="middle">${esc(a.label)}</text></g>`;
    })
    .join('');
  const ticks = [0, 0.5, 1]
    .map(
      (f) =>
        `<text class="tick" x="${pad.left - 6}" y="${y(max * f).toFixed(1)}" text-anchor="end" dominant-baseline="middle">${esc(format(max * f))}</text>`,
    )
    .join('');
  const empty =
    present.length === 0
      ? `<text x="${width / 2}" y="${height / 2}" text-anchor="middle" class="empty">no data in this period</text>`
      : '';
  return `<figure class="chart"><svg role="img" aria-label="${esc(title)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" xmlns="http://www.w3.org/2000/svg">
<title>${esc(title)}</title>
<line class="axis" x1="${pad.left}" x2="${width - pad.right}" y1="${height - pad.bottom}" y2="${height - pad.bottom}"/>
<line class="axis" x1="${pad.left}" x2="${pad.left}" y1="${pad.top}" y2="${height - pad.bottom}"/>
${ticks}<text class="tick" x="${pad.left}" y="${height - 12}">${esc(period.from)}</text><text class="tick" x="${width - pad.right}" y="${height - 12}" text-anchor="end">${esc(period.to)}</text>
${markers}<path class="line" d="${path}"/>${dots}${empty}</svg><figcaption>${esc(title)}</figcaption></figure>`;
}

const STYLE = `
@page { size: A4; margin: 14mm; }
body { font: 11pt/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f; max-width: 190mm; margin: 0 auto; padding: 8mm; }
h1 { font-size: 20pt; margin: 0 0 2mm; } h2 { font-size: 14pt; margin: 8mm 0 2mm; break-after: avoid; }
.meta { color: #555; margin: 0 0 6mm; }
section.team { break-inside: avoid-page; }
table { border-collapse: collapse; width: 100%; margin: 2mm 0 4mm; font-size: 10pt; }
caption { text-align: left; font-weight: 600; padding: 1mm 0; }
th, td { border-bottom: 1px solid #ddd; padding: 1.2mm 2mm; text-align: right; } th[scope=row], thead th:first-child { text-align: left; }
.charts { display: flex; flex-wrap: wrap; gap: 4mm; } figure.chart { margin: 0; flex: 1 1 88mm; break-inside: avoid; }
figure.chart svg { width: 100%; height: auto; } figcaption { font-size: 9pt; color: #555; }
.line { fill: none; stroke: #632ca6; stroke-width: 2; } circle { fill: #632ca6; } .axis { stroke: #999; }
.tick { font-size: 10px; fill: #555; } .marker line { stroke: #d33; stroke-dasharray: 4 3; } .marker text { font-size: 10px; fill: #d33; }
.empty { fill: #999; font-size: 12px; }
details { margin: 0 0 4mm; } summary { cursor: pointer; color: #555; }
@media print { details { display: block; } details > summary { display: none; } }
`;

/** One team's headline table and weekly charts: the report's, and the local live view's. */
export function teamSection(report: Report, team: TeamReport): string {
  const name = team.team === 'all' ? 'Organisation (all teams)' : `Team ${team.team}`;
  return `<section class="team"><h2>${esc(name)}</h2>
${htmlTable(`${name}: ${report.period.label} against ${report.comparison.label}`, headlineHeader(report), headlineRows(report, team))}
<div class="charts">
${chart(`${name}: deploys per developer per day (7 days), weekly`, team.weekly, (p) => p.deploysPerDeveloperPerDay, fixed(2), report.annotations, report.period)}
${chart(`${name}: lead time p50, weekly`, team.weekly, (p) => p.leadTimeP50, hours, report.annotations, report.period)}
</div>
${htmlTable(`${name}: DORA performance levels (${TIER_SOURCE})`, TIER_HEADER(report), tierRows(team))}
<details open><summary>The charts' figures</summary>${htmlTable(`${name}: weekly figures`, WEEK_HEADER, weekRows(team))}</details>
${
  team.current.rework.length === 0
    ? ''
    : `<details class="rework"><summary>Unplanned deployments (rework) in ${esc(report.period.label)}, and why: ${String(team.current.rework.length)}</summary>${htmlTable(`${name}: deployment rework`, REWORK_HEADER, reworkRows(team))}</details>`
}
</section>`;
}

/** "How far to trust these numbers": the report's data-quality block, on the report and the live view. */
export function qualitySection(report: Report): string {
  return `<h2>How far to trust these numbers</h2><ul class="quality">${qualityLines(report)
    .map((l) => `<li>${esc(l)}</li>`)
    .join('')}</ul>`;
}

export { esc as escapeHtml, htmlTable, STYLE as REPORT_STYLE };

export function renderHtml(report: Report): string {
  const teams = report.teams.map((team) => teamSection(report, team)).join('\n');
  const movers =
    report.movers.byDeploys.length === 0
      ? '<p>No service changed its deploy count.</p>'
      : htmlTable(
          'Services whose deploy count moved most',
          ['Service', report.period.label, report.comparison.label, 'Change'],
          deployMoverRows(report),
        );
  const leadMovers =
    report.movers.byLeadTime.length === 0
      ? ''
      : htmlTable(
          'Services whose lead time moved most',
          ['Service', report.period.label, report.comparison.label, 'Change'],
          leadTimeMoverRows(report),
        );
  const milestones =
    report.annotations.length === 0
      ? ''
      : `<h2>Milestones</h2><ul>${report.annotations.map((a) => `<li>${esc(a.date)}: ${esc(a.label)}</li>`).join('')}</ul>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Delivery report: ${esc(report.period.label)}</title><style>${STYLE}</style></head>
<body><h1>Delivery report: ${esc(report.period.label)}</h1>
<p class="meta">Compared with ${esc(report.comparison.label)}. Days in ${esc(report.timezone)}. Generated ${esc(report.generatedAt)} by DevStats.</p>
${teams}
${milestones}
<h2>What moved most</h2>${movers}${leadMovers}
${qualitySection(report)}
</body></html>
`;
}
