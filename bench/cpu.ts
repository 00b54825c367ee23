/**
 * CPU per deploy end to end in embedded mode (`npm start`: ingest, the on-disk queue, process,
 * SQLite and the export to Datadog on one thread), against a local Datadog: CI deploy
 * notifications at a fixed rate until every one reached Datadog; the server's CPU time (user +
 * system, from /proc) over the deploys; and, from a CPU profile of the same run (`--cpu-prof`), the
 * ten functions with the most self time. The server is pinned to one core, the load and Datadog
 * to the other.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { FakeDatadog } from '../test/support/datadog-server.ts';
import { freePort } from '../test/support/ports.ts';
import { untilAnswering, cpuMicros } from './support.ts';

const RATE = Number(process.env.BENCH_CPU_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_CPU_SECONDS ?? 10);
const REVERSE = process.env.BENCH_CPU_ORDER === 'reverse';
const SERVICES = Number(process.env.BENCH_CPU_SERVICES ?? 500);
const pinning = spawnSync('taskset', ['-V']).status === 0 && cpus().length >= 2;
if (pinning) spawnSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
/** The profile's functions by self time over its last `lastMs` (the measured run), as `name (file:line)` and ms. */
export function topSelfTime(
  file: string,
  lastMs: number,
  count = 10,
): Array<{ fn: string; ms: number; share: number }> {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: ProfileNode[];
    samples: number[];
    timeDeltas: number[];
    startTime: number;
    endTime: number;
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const from = profile.endTime - lastMs * 1000;
  let at = profile.startTime;
  let total = 0;
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)?.callFrame;
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (at < from || frame === undefined || frame.functionName === '(idle)') return;
    const where = frame.url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*?\/(shared|functions)\//, '$1/');
    const key = `${frame.functionName || '(anonymous)'} (${where === '' ? 'native' : `${where}:${frame.lineNumber + 1}`})`;
    self.set(key, (self.get(key) ?? 0) + delta);
    total += delta;
  });
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([fn, us]) => ({ fn, ms: us / 1000, share: us / total }));
}

interface Run {
  deploys: number;
  cpuMs: number;
  requests: number;
  profile: Array<{ fn: string; ms: number; share: number }> | undefined;
}

/**
 * One embedded server, a warm-up, then the run; with `profile`, under `--cpu-prof`; `bare`: the
 * floor, functions-framework answering 202 and doing nothing else (bench/floors/bare.js).
 */
async function run(profile: boolean, bare = false): Promise<Run> {
  const dd = await new FakeDatadog().start();
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'devstats-cpu-'));
  const profileDir = mkdtempSync(join(tmpdir(), 'devstats-cpu-profile-'));
  const command = [
    process.execPath,
    ...(profile ? [`--cpu-prof-dir=${profileDir}`, '--cpu-prof'] : []),
    'node_modules/@google-cloud/functions-framework/build/src/main.js',
    bare ? '--target=bare' : '--target=ingest',
    bare ? '--source=bench/floors/bare.js' : '--source=dist/functions/index.js',
  ];
  if (pinning) command.unshift('taskset', '-c', '1');
  const [file = '', ...args] = command;
  const child = spawn(file, args, {
    env: {
      ...process.env,
      PORT: String(port),
      NODE_ENV: 'production',
      DEPLOY_WEBHOOK_TOKEN: 'bench',
      DD_API_KEY: 'bench',
      DD_API_URL: dd.url,
      DEVSTATS_DATA_DIR: dataDir,
      DEVSTATS_STORE: 'sqlite',
      DEVSTATS_BUS: 'memory',
    },
    stdio: 'ignore',
  });
  await untilAnswering(port);
  const doraDeployments = () => dd.accepted.filter((r) => r.path === '/api/v2/dora/deployment').length;
  const started = Date.now();
  let sent = 0;
  /** Deploys at `rate` a second for `seconds`, then until every one reached Datadog. */
  async function load(rate: number, seconds: number): Promise<number> {
    const before = doraDeployments();
    const result = await autocannon({
      url: `http://127.0.0.1:${port}/deployments`,
      method: 'POST',
      connections: 16,
      duration: seconds,
      overallRate: rate,
      headers: { 'content-type': 'application/json', authorization: 'Bearer bench' },
      requests: [
        {
          setupRequest: (request) => {
            const n = ++sent;
            // Live order (each deploy finished after the last, as webhooks come), or, with
            // BENCH_CPU_ORDER=reverse, each older than the last (a late delivery: its restores are
            // looked for over the 56 days before it, every deploy of its service read).
            const finishedAt = REVERSE ? started - (n % 3600) * 1000 : started + n * 10;
            return {
              ...request,
              body: JSON.stringify({
                // An organisation's worth of services: each deploys every 2.5 s here, far more often than any does.
                service: `svc-${n % SERVICES}`,
                environment: 'production',
                status: 'success',
                startedAt: new Date(finishedAt - 300_000).toISOString(),
                finishedAt: new Date(finishedAt).toISOString(),
                id: `cpu-${n}`,
              }),
            };
          },
        },
      ],
    });
    const accepted = result['2xx'];
    const deadline = Date.now() + 30_000;
    while (!bare && doraDeployments() - before < accepted && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 50));
    if (!bare && doraDeployments() - before < accepted) throw new Error('not every deploy reached Datadog within 30 s');
    return accepted;
  }
  // A warm-up (the instance's first deliveries load the store and the Datadog client), then the run.
  await load(50, 2);
  const cpuBefore = cpuMicros(child.pid) / 1000;
  const measuredFrom = performance.now();
  const requestsBefore = dd.attempts;
  const deploys = await load(RATE, SECONDS);
  const cpu = cpuMicros(child.pid) / 1000 - cpuBefore;
  const requests = dd.attempts - requestsBefore;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
  await dd.stop();
  const written = readdirSync(profileDir).find((name) => name.endsWith('.cpuprofile'));
  rmSync(dataDir, { recursive: true, force: true });
  const top =
    written === undefined ? undefined : topSelfTime(join(profileDir, written), performance.now() - measuredFrom);
  // BENCH_CPU_PROFILE=<file> keeps the profile (for Chrome's DevTools, or a closer look).
  if (written !== undefined && process.env.BENCH_CPU_PROFILE !== undefined)
    copyFileSync(join(profileDir, written), process.env.BENCH_CPU_PROFILE);
  rmSync(profileDir, { recursive: true, force: true });
  return { deploys, cpuMs: cpu, requests, profile: top };
}

// The figure from a run without the profiler (it costs CPU of its own); the profile from a second.
const measured = await run(false);
const profiled = await run(true);
const floor = await run(false, true);
console.log(
  `\n# CPU per deploy, embedded mode (${RATE} deploys/s offered for ${SECONDS} s, ${SERVICES} services, ${REVERSE ? 'each deploy older than the last' : 'in live order'}${pinning ? ', the server pinned to core 1' : ''})\n`,
);
console.log('| figure | value | aim |\n|---|---|---|');
console.log(`| deploys exported | ${measured.deploys} | |`);
console.log(
  `| server CPU per deploy, end to end (ms, user + system) | ${(measured.cpuMs / measured.deploys).toFixed(2)} | ≤ 1.0 |`,
);
console.log(
  `| the floor: functions-framework answering 202, nothing else, CPU per request (ms) | ${(floor.cpuMs / floor.deploys).toFixed(2)} | |`,
);
console.log(`| Datadog requests per deploy | ${(measured.requests / measured.deploys).toFixed(2)} | |`);
if (profiled.profile !== undefined) {
  console.log('\n| self time under `--cpu-prof`, the measured run (after the warm-up) | ms | share |\n|---|---|---|');
  for (const { fn, ms, share } of profiled.profile)
    console.log(`| \`${fn.replaceAll('|', '\\|')}\` | ${ms.toFixed(0)} | ${(share * 100).toFixed(1)} % |`);
}
