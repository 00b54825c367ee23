import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import * as z from 'zod';
import { ConfigError } from '../config-error.ts';
import { buildReport, dayRange, previousPeriod, quarter } from '../report/figures.ts';
import { renderCsv, renderHtml, renderMarkdown } from '../report/render.ts';

import { type Command, withStore } from './command.ts';

const Annotations = z.array(z.object({ date: z.iso.date(), label: z.string().min(1) }));

const runReport: Command['run'] = async (args, env, out) => {
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
  const format = values.format ?? ['html', 'json', 'csv'].find((f) => values.out?.endsWith(`.${f}`) === true) ?? 'md';
  if (!['html', 'md', 'json', 'csv'].includes(format)) throw new ConfigError('--format must be html, md, json or csv');
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
          : format === 'csv'
            ? renderCsv(report)
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
};

export const reportCommand: Command = {
  name: 'report',
  help: [
    {
      synopsis: [
        'report (--quarter 2026-Q3 | --from YYYY-MM-DD --to YYYY-MM-DD) [--compare previous|<quarter>]',
        '[--team <name>]... [--format html|md|json|csv] [--out <file>] [--annotations <file.json|yaml>]',
      ],
      summary: ['the quarterly roadmap review: this period against the last, per team, and what moved it'],
    },
  ],
  examples: ['npm run devstats -- report --quarter 2026-Q4 --out report.html'],
  run: runReport,
};
