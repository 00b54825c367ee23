/**
 * `npm run bench`: ingest throughput, CPU per request, cold start and memory, each beside a bare
 * functions-framework handler measured in the same run on the same machine.
 *
 * This machine's speed drifts by ±15% over seconds (a shared VM), more than the difference being
 * measured. So both servers run side by side, each pinned to the same core (a Cloud Functions
 * instance has about one), and the load alternates between them in short segments: a drift
 * weighs on both alike. The load generator runs here, pinned to the other core.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import autocannon from 'autocannon';
import { githubPush } from '../test/support/fixtures.ts';
import { sign } from '../test/support/signing.ts';
import { freePort } from '../test/support/ports.ts';
import { cpuMicros } from './support.ts';

const SECRET = 'bench-secret';
const SEGMENT_S = Number(process.env.BENCH_SEGMENT_S ?? 2);
const SEGMENTS = Number(process.env.BENCH_SEGMENTS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);

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
}
// The deployed build (dist/, as Cloud Functions runs it), its publish acknowledged in-process.
const ours: Target = { name: 'ingest', source: 'bench/ingest-only.js', target: 'ingest' };
const bare: Target = { name: 'bare handler', source: 'bench/floors/bare.js', target: 'bare' };

const pinning = spawnSync('taskset', ['-V']).status === 0 && cpus().length >= 2;
/** This process's CPUs before pinning (`npm run bench` runs every benchmark in it, after this one). */
const unpinned = `0-${cpus().length - 1}`;
if (pinning) spawnSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });

function start(target: Target, port: number): ChildProcess {
  const command = [
    process.execPath,
    'node_modules/@google-cloud/functions-framework/build/src/main.js',
    `--target=${target.target}`,
    `--source=${target.source}`,
  ];
  if (pinning) command.unshift('taskset', '-c', '1');
  const [file = '', ...args] = command;
  return spawn(file, args, {
    env: { ...process.env, PORT: String(port), NODE_ENV: 'production', GITHUB_WEBHOOK_SECRET: SECRET },
    stdio: 'ignore',
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

interface Load {
  requests: number;
  seconds: number;
  cpuMicros: number;
  p99s: number[];
  non2xx: number;
  peakMb: number;
}

const hit = (port: number, duration: number) =>
  autocannon({
    url: `http://127.0.0.1:${port}/github`,
    method: 'POST',
    headers,
    body,
    connections: CONNECTIONS,
    duration,
  });

/**
 * Both servers up at once; SEGMENTS rounds of SEGMENT_S seconds of load on each in turn (the order
 * swapped every round), after a warm-up of the JIT. Requests, CPU time and p99 per segment add up.
 */
async function sideBySide(targets: Target[]): Promise<Map<Target, Load>> {
  const servers = await Promise.all(
    targets.map(async (target) => {
      const port = await freePort();
      return { target, port, child: start(target, port) };
    }),
  );
  try {
    for (const { port, child, target } of servers) {
      for (;;) {
        try {
          await fetch(`http://127.0.0.1:${port}/github`, { method: 'POST', headers, body });
          break;
        } catch {
          // A server that cannot start (a module moved) stops the bench, not waits forever.
          if (child.exitCode !== null) throw new Error(`${target.name} exited ${child.exitCode} before answering`);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
      await hit(port, 2);
    }
    const loads = new Map<Target, Load>(
      targets.map((t) => [t, { requests: 0, seconds: 0, cpuMicros: 0, p99s: [], non2xx: 0, peakMb: 0 }]),
    );
    for (let round = 0; round < SEGMENTS; round++) {
      const order = round % 2 === 0 ? servers : [...servers].reverse();
      for (const { target, port, child } of order) {
        const load = loads.get(target);
        if (load === undefined) continue;
        const cpuBefore = cpuMicros(child.pid);
        const result = await hit(port, SEGMENT_S);
        load.cpuMicros += cpuMicros(child.pid) - cpuBefore;
        load.requests += result.requests.total;
        load.seconds += result.duration;
        load.p99s.push(result.latency.p99);
        load.non2xx += result.non2xx;
      }
    }
    for (const { target, child } of servers) {
      const status = readFileSync(`/proc/${String(child.pid)}/status`, 'utf8');
      const load = loads.get(target);
      if (load !== undefined) load.peakMb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024;
    }
    return loads;
  } finally {
    await Promise.all(servers.map(({ child }) => stop(child)));
  }
}

const round = (n: number, digits = 0) => Number(n.toFixed(digits));

console.log(
  `# ingest benchmark: signed GitHub push of ${body.length} bytes, ${CONNECTIONS} connections, ` +
    `${SEGMENTS} segments of ${SEGMENT_S} s each, alternating`,
);
console.log(
  `node ${process.version}, ${String(cpus().length)} cores` +
    (pinning ? '; servers on core 1, load generator on core 0\n' : '; not pinned (no taskset)\n'),
);

const loads = await sideBySide([bare, ours]);
// The benchmarks after this one (and the processes they start, which inherit it) get every core again.
if (pinning) spawnSync('taskset', ['-a', '-p', '-c', unpinned, String(process.pid)], { stdio: 'ignore' });
const figures = (target: Target) => {
  const load = loads.get(target);
  if (load === undefined) throw new Error(`no load for ${target.name}`);
  return {
    rps: load.requests / load.seconds,
    cpu: load.cpuMicros / load.requests,
    p99: median(load.p99s),
    peakMb: load.peakMb,
    non2xx: load.non2xx,
  };
};
const load = { bare: figures(bare), ours: figures(ours) };

const rows = [
  ['deliveries/s', round(load.ours.rps), round(load.bare.rps), round(load.ours.rps / load.bare.rps, 2), '≥ 0.85'],
  [
    'server CPU per request (µs, user + system)',
    round(load.ours.cpu),
    round(load.bare.cpu),
    round(load.ours.cpu / load.bare.cpu, 2),
    '≤ 1.15',
  ],
  ['p99 latency (ms, median of segments)', load.ours.p99, load.bare.p99, round(load.ours.p99 / load.bare.p99, 2), ''],
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
if (load.ours.non2xx > 0 || load.bare.non2xx > 0) {
  console.log(`\nnon-2xx answers: ingest ${load.ours.non2xx}, bare ${load.bare.non2xx}`);
  process.exitCode = 1;
}
