#!/usr/bin/env node
import { ConfigError } from '../config-error.ts';
import { backfillCommand } from './backfill.ts';
import type { Command } from './command.ts';
import { dashboardCommand } from './dashboard.ts';
import { demoCommand } from './demo.ts';
import { doctorCommand } from './doctor.ts';
import { eventsCommand } from './events.ts';
import { redeliverCommand } from './redeliver.ts';
import { replayCommand } from './replay.ts';
import { reportCommand } from './report.ts';
import { rollupCommand } from './rollup.ts';
import { teamsCommand } from './teams.ts';

/** Every command, in the order the usage lists them: one file each, its help beside its code. */
const COMMANDS: readonly Command[] = [
  eventsCommand,
  reportCommand,
  dashboardCommand,
  rollupCommand,
  backfillCommand,
  redeliverCommand,
  demoCommand,
  doctorCommand,
  replayCommand,
  teamsCommand,
];

const helpLines = (command: Command): string[] =>
  command.help.flatMap(({ synopsis, summary }) => [
    `  ${synopsis[0] ?? ''}`,
    ...synopsis.slice(1).map((line) => `         ${line}`),
    ...summary.map((line) => `         ${line}`),
  ]);

/** `devstats` or `devstats --help`: every command. */
const USAGE = ['usage: devstats <command> [--help]', '', 'commands:', ...COMMANDS.flatMap(helpLines), ''].join('\n');

/** `devstats <command> --help`: what it does, its options, an example. */
function commandHelp(command: Command): string {
  return [
    `usage: devstats ${command.help[0]?.synopsis.join(' ') ?? command.name}`,
    '',
    ...helpLines(command),
    '',
    'example:',
    ...command.examples.map((example) => `  ${example}`),
    '',
  ].join('\n');
}

export async function main(
  argv: string[],
  env: Record<string, string | undefined>,
  out: (line: string) => void,
): Promise<number> {
  const [name, ...rest] = argv;
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    out(USAGE);
    return name === undefined || name === '--help' || name === 'help' ? 0 : 64;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    out(commandHelp(command));
    return 0;
  }
  return command.run(rest, env, out);
}

/** Runs the command line of this process (`npm run devstats`, and `bin/devstats.js`). */
export function runCli(): void {
  main(process.argv.slice(2), process.env, (line) => process.stdout.write(line + '\n')).then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      process.stderr.write(`devstats: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exitCode =
        error instanceof ConfigError || error instanceof RangeError || error instanceof TypeError ? 64 : 1;
    },
  );
}

if (import.meta.main ?? process.argv[1] === new URL(import.meta.url).pathname) runCli();
