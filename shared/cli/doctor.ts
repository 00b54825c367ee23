import { parseArgs } from 'node:util';
import { doctor } from './doctor-checks.ts';

import type { Command } from './command.ts';

const runDoctor: Command['run'] = async (args, env, out) => {
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
};

export const doctorCommand: Command = {
  name: 'doctor',
  help: [
    {
      synopsis: ['doctor [--json]'],
      summary: [
        "check the configuration, each source's secret, the Datadog key, the Pub/Sub topics and",
        "subscriptions and each source's last delivery, and say what to fix",
      ],
    },
  ],
  examples: ['npm run devstats -- doctor'],
  run: runDoctor,
};
