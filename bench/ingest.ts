/**
 * `npm run bench`: ingest throughput, cold start and memory, each beside a bare
 * functions-framework handler measured in the same run on the same machine.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { githubPush } from '../test/support/fixtures.ts';
import { sign } from '../test/support/signing.ts';
import { freePort } from '../test/support/ports.ts';

const SECRET = 'bench-secret';
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const COLD_RUNS = Number(process.env.BENCH_COLD_RUNS ?? 5);

const body = JSON.stringify(githubPush());
const headers = {
  'content-type': 'application/json',
  'x-github-event': 'push',
  'x-github-delivery': 'bench-delivery',
  'x-hub-signature-256': sign.github(body, SECRET),
};

interface Target {
  name: string;
  source: string;
  target: string;
  env?: Record<string, string>;
}
// The deployed build (dist/, as Cloud Functions runs it), its publish acknowledged in-process.
const ours: Target = { name: 'ingest', source: 'bench/ingest-only.js', target: 'ingest' };
// `npm start`'s embedded mode: ingest, process and the SQLite store in one process.
const embedded: Target = {
  name: 'embedded',
  source: 'dist/functions/index.js',
  target: 'ingest',
  env: { DEVSTATS_DATA_DIR: mkdtempSync(join(tmpdir(), 'devstats-bench-embedded-')) },
};
const bare: Target = { name: 'bare handler', source: 'bench/bare.ts', target: 'bare' };

function start(target: Target, port: number): ChildProcess {
  return spawn(
    process.execPath,
    [
      'node_modules/@google-cloud/functions-framework/build/src/main.js',
      `--target=${target.target}`,
      `--source=${target.source}`,
    ],
    {
      env: { ...process.env, PORT: String(port), NODE_ENV: 'production', GITHUB_WEBHOOK_SECRET: SECRET, ...target.env },
      stdio: 'ignore',
    },
  );
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** Process start to the first 202 answer to a signed push, polling every 2 ms. */
async function coldStart(target: Target): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const child = start(target, port);
  try {
    for (;;) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/github`, { method: 'POST', headers, body });
        if (response.status === 202) return performance.now() - started;
        throw new Error(`${target.name} answered ${response.status}: ${await response.text()}`);
      } catch (error) {
        if (error instanceof Error && error.message.includes('answered')) throw error;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    }
  } finally {
    await stop(child);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/** Requests per second over DURATION_S, and the server's peak resident memory (VmHWM). */
async function throughput(target: Target): Promise<{ rps: number; p99: number; peakMb: number; non2xx: number }> {
  const port = await freePort();
  const child = start(target, port);
  try {
    for (;;) {
      try {
        await fetch(`http://127.0.0.1:${port}/github`, { method: 'POST', headers, body });
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    // Warm up the JIT, then measure.
    await autocannon({
      url: `http://127.0.0.1:${port}/github`,
      method: 'POST',
      headers,
      body,
      connections: CONNECTIONS,
      duration: 2,
    });
    const result = await autocannon({
      url: `http://127.0.0.1:${port}/github`,
      method: 'POST',
      headers,
      body,
      connections: CONNECTIONS,
      duration: DURATION_S,
    });
    const status = readFileSync(`/proc/${String(child.pid)}/status`, 'utf8');
    const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    return { rps: result.requests.average, p99: result.latency.p99, peakMb: hwmKb / 1024, non2xx: result.non2xx };
  } finally {
    await stop(child);
  }
}

const round = (n: number, digits = 0) => Number(n.toFixed(digits));

console.log(
  `# ingest benchmark: signed GitHub push of ${body.length} bytes, ${CONNECTIONS} connections, ${DURATION_S} s`,
);
console.log(`node ${process.version}, ${String((await import('node:os')).cpus().length)} cores\n`);

const load = { bare: await throughput(bare), ours: await throughput(ours), embedded: await throughput(embedded) };
const cold = { bare: [] as number[], ours: [] as number[] };
for (let i = 0; i < COLD_RUNS; i++) {
  cold.bare.push(await coldStart(bare));
  cold.ours.push(await coldStart(ours));
}

const rows = [
  ['deliveries/s', round(load.ours.rps), round(load.bare.rps), round(load.ours.rps / load.bare.rps, 2), '≥ 0.7'],
  ['p99 latency (ms)', load.ours.p99, load.bare.p99, round(load.ours.p99 / load.bare.p99, 2), ''],
  [
    'cold start to first 202 (ms, median)',
    round(median(cold.ours)),
    round(median(cold.bare)),
    round(median(cold.ours) / median(cold.bare), 2),
    '≤ 1.5',
  ],
  [
    'peak RSS under load (MB)',
    round(load.ours.peakMb),
    round(load.bare.peakMb),
    round(load.ours.peakMb / load.bare.peakMb, 2),
    '< 200 MB',
  ],
];
console.log('| figure | ingest | bare | ratio | aim |\n|---|---|---|---|---|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
console.log(
  `\nembedded mode (npm start: ingest + process + SQLite in one process): ${round(load.embedded.rps)} deliveries/s, ` +
    `p99 ${load.embedded.p99} ms, peak RSS ${round(load.embedded.peakMb)} MB`,
);
if (load.ours.non2xx > 0 || load.bare.non2xx > 0 || load.embedded.non2xx > 0) {
  console.log(
    `\nnon-2xx answers: ingest ${load.ours.non2xx}, bare ${load.bare.non2xx}, embedded ${load.embedded.non2xx}`,
  );
  process.exitCode = 1;
}
