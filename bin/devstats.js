#!/usr/bin/env node
// `devstats` as a command (`npm link`, or `npm install -g .` from a checkout): the CLI's TypeScript
// run directly, as `npm run devstats` runs it (Node 22.18+ strips the types), after the preflight
// that names an older Node in one line. No build step: a fresh checkout has no dist/.
import '../scripts/preflight.js';

const { runCli } = await import('../shared/cli/main.ts');
runCli();
