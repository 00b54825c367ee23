/**
 * Cold starts, each beside its floor in the same run: a function as Cloud Functions starts it
 * (functions-framework's own `main.js`, the deployed bundle, the emulators, a local Datadog) from
 * process start to its first answered request, and the floor it cannot go below, a plain-JavaScript
 * function under the same framework and flags that loads only the clients the target must use
 * (bench/floors/). Every process is pinned to one core (a Cloud Functions instance has about one);
 * the rounds alternate the sides, so the machine's drift weighs on both alike; figures are medians.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { FakeDatadog } from '../test/support/datadog-server.ts';
import { type Emulator, emulatorAvailable, startEmulator } from '../test/support/emulator.ts';
import { githubPush } from '../test/support/fixtures.ts';
import { freePort } from '../test/support/ports.ts';
import { sign } from '../test/support/signing.ts';

const ROUNDS = Number(process.env.BENCH_COLD_RUNS ?? 9);
const SECRET = 'bench-secret';
const pinning = spawnSync('taskset', ['-V']).status === 0 && cpus().length >= 2;

interface Side {
  name: string;
  source: string;
  target: string;
  signatureType: 'http' | 'cloudevent';
  env: Record<string, string>;
  /** The first request: sent every 2 ms until the server answers it. */
  request: () => { path: string; headers: Record<string, string>; body: string };
  /** Checks that the answered request did its work (stored, published, exported). */
  check?: (id: string) => void;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

function start(side: Side, port: number, env: Record<string, string>): ChildProcess {
  const command = [
    process.execPath,
    'node_modules/@google-cloud/functions-framework/build/src/main.js',
    `--target=${side.target}`,
    `--source=${side.source}`,
    `--signature-type=${side.signatureType}`,
  ];
  if (pinning) command.unshift('taskset', '-c', '1');
  const [file = '', ...args] = command;
  return spawn(file, args, {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: String(port), ...side.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true,
  });
}

let runs = 0;
/** Process start to the first 2xx answer, in ms. */
async function coldStart(side: Side): Promise<number> {
  const port = await freePort();
  const id = `cold-${++runs}`;
  const started = performance.now();
  // A project of its own per run: an empty Firestore, as a new deployment's first delivery sees.
  const child = start(side, port, { DEVSTATS_BENCH_ID: id, GOOGLE_CLOUD_PROJECT: projectFor(side, runs) });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  try {
    for (;;) {
      const { path, headers, body } = side.request();
      const answer = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'POST', headers, body }).catch(
        () => undefined,
      );
      if (answer === undefined) {
        if (child.exitCode !== null) throw new Error(`${side.name} exited ${child.exitCode}: ${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 2));
        continue;
      }
      const elapsed = performance.now() - started;
      if (answer.status >= 300) throw new Error(`${side.name} answered ${answer.status}: ${await answer.text()}`);
      side.check?.(id);
      return elapsed;
    }
  } finally {
    if (child.exitCode === null && child.pid !== undefined) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      process.kill(-child.pid, 'SIGKILL');
      await exited;
    }
  }
}

function projectFor(side: Side, run: number): string {
  return side.signatureType === 'cloudevent' ? `devstats-cold-${run}` : 'devstats-cold';
}

// ---- the parts: a local Datadog here (on the other core), the emulators --------------------------
if (pinning) spawnSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
const dd = await new FakeDatadog().start();
const need = (kind: 'pubsub' | 'firestore') => {
  if (emulatorAvailable(kind)) return startEmulator(kind);
  if (process.env.CI === 'true') throw new Error(`CI=true but the ${kind} emulator is not installed`);
  return undefined;
};
const [firestore, pubsub]: Array<Emulator | undefined> = await Promise.all([need('firestore'), need('pubsub')]);
if (pubsub !== undefined) {
  const created = await fetch(`http://${pubsub.host}/v1/projects/devstats-cold/topics/devstats-raw`, { method: 'PUT' });
  if (!created.ok) throw new Error(`the Pub/Sub emulator refused the topic: ${created.status}`);
}

/** A CI deploy notification, as Eventarc delivers a Pub/Sub message to `process`. */
function deployEvent(id: string) {
  const now = Date.now();
  const deploy = {
    service: 'billing',
    environment: 'production',
    status: 'success',
    startedAt: new Date(now - 60_000).toISOString(),
    finishedAt: new Date(now).toISOString(),
    id,
  };
  const topic = 'projects/devstats-cold/topics/devstats-raw';
  return {
    path: '/',
    headers: {
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-id': id,
      'ce-type': 'google.cloud.pubsub.topic.v1.messagePublished',
      'ce-source': `//pubsub.googleapis.com/${topic}`,
    },
    body: JSON.stringify({
      message: {
        data: Buffer.from(JSON.stringify(deploy)).toString('base64'),
        attributes: { source: 'ci', eventType: 'deployment', deliveryId: id, receivedAt: new Date(now).toISOString() },
        messageId: id,
        publishTime: new Date(now).toISOString(),
      },
      subscription: 'projects/devstats-cold/subscriptions/devstats-process',
    }),
  };
}
let current = '';
const pushBody = JSON.stringify(githubPush());
function signedPush() {
  return {
    path: '/github',
    headers: {
      'content-type': 'application/json',
      'x-github-event': 'push',
      'x-github-delivery': `cold-${runs}`,
      'x-hub-signature-256': sign.github(pushBody, SECRET),
    },
    body: pushBody,
  };
}
const exported = (id: string) => {
  const sent = dd.accepted.some(
    (r) =>
      r.path === '/api/v2/dora/deployment' &&
      ((r.body as { data?: { attributes?: { id?: string } } }).data?.attributes?.id ?? '').endsWith(id),
  );
  if (!sent) throw new Error(`the deploy ${id} answered but never reached Datadog`);
};

const cloud = (target: string) => ({
  K_SERVICE: `devstats-${target}`,
  FUNCTION_TARGET: target,
  METADATA_SERVER_DETECTION: 'none',
  NODE_ENV: 'production',
});
const withFirestore: Record<string, string> =
  firestore === undefined ? {} : { FIRESTORE_EMULATOR_HOST: firestore.host };
const withPubsub: Record<string, string> = pubsub === undefined ? {} : { PUBSUB_EMULATOR_HOST: pubsub.host };
const datadog = { DD_API_KEY: 'bench', DD_API_URL: dd.url };

const sides = {
  process: {
    name: 'process',
    source: 'dist/bundle/process.js',
    target: 'process',
    signatureType: 'cloudevent',
    env: { ...cloud('process'), ...withFirestore, ...datadog, DEVSTATS_STORE: 'firestore' },
    request: () => deployEvent(current),
    check: exported,
  },
  processRest: {
    name: 'process, Firestore over REST',
    source: 'dist/bundle/process.js',
    target: 'process',
    signatureType: 'cloudevent',
    env: {
      ...cloud('process'),
      ...withFirestore,
      ...datadog,
      DEVSTATS_STORE: 'firestore',
      DEVSTATS_FIRESTORE_REST: '1',
    },
    request: () => deployEvent(current),
    check: exported,
  },
  floorRest: {
    name: 'floor: Firestore (REST), one read + one write',
    source: 'bench/floors/process.js',
    target: 'process',
    signatureType: 'cloudevent',
    env: { ...cloud('process'), ...withFirestore, PREFER_REST: '1' },
    request: () => deployEvent(current),
  },
  floorGrpc: {
    name: 'floor: Firestore (gRPC), one read + one write',
    source: 'bench/floors/process.js',
    target: 'process',
    signatureType: 'cloudevent',
    env: { ...cloud('process'), ...withFirestore },
    request: () => deployEvent(current),
  },
  ingest: {
    name: 'ingest',
    source: 'dist/bundle/ingest.js',
    target: 'ingest',
    signatureType: 'http',
    env: { ...cloud('ingest'), ...withPubsub, GITHUB_WEBHOOK_SECRET: SECRET },
    request: signedPush,
  },
  floorIngest: {
    name: 'floor: @google-cloud/pubsub, one publish',
    source: 'bench/floors/ingest.js',
    target: 'ingest',
    signatureType: 'http',
    env: { ...cloud('ingest'), ...withPubsub },
    request: signedPush,
  },
  bare: {
    name: 'bare: functions-framework answering 202',
    source: 'bench/floors/bare.js',
    target: 'bare',
    signatureType: 'http',
    env: { NODE_ENV: 'production' },
    request: signedPush,
  },
} satisfies Record<string, Side>;

type Name = keyof typeof sides;
const measured = (
  [
    ...(firestore === undefined ? [] : (['process', 'processRest', 'floorGrpc', 'floorRest'] as const)),
    ...(pubsub === undefined ? [] : (['ingest', 'floorIngest'] as const)),
    'bare',
  ] satisfies Name[]
)
  // BENCH_COLD_ONLY=process,floorRest measures only those sides.
  .filter((name) => process.env.BENCH_COLD_ONLY === undefined || process.env.BENCH_COLD_ONLY.split(',').includes(name));
const times = new Map<Name, number[]>(measured.map((name) => [name, []]));
for (let round = 0; round < ROUNDS; round++) {
  // Each round in another order, so no side always follows the same one.
  const order = round % 2 === 0 ? measured : [...measured].reverse();
  for (const name of order) {
    current = `cold-${runs + 1}`;
    times.get(name)?.push(await coldStart(sides[name]));
  }
}
await Promise.all([firestore?.stop(), pubsub?.stop(), dd.stop()]);

const ms = (name: Name) => median(times.get(name) ?? []);
const spread = (name: Name) => {
  const values = times.get(name) ?? [];
  return `${ms(name).toFixed(0)} (${Math.min(...values).toFixed(0)}–${Math.max(...values).toFixed(0)})`;
};
const row = (figure: string, ours: Name, floor: Name, aim: string) =>
  `| ${figure} | ${times.has(ours) ? spread(ours) : 'not measured'} | ${times.has(floor) ? `${spread(floor)}: ${sides[floor].name}` : 'not measured'} | ${(ms(ours) / ms(floor)).toFixed(2)} | ${aim} |`;

console.log(
  `\n# cold starts (process start to the first answered request, ms, median and range of ${ROUNDS}; ` +
    `${pinning ? 'each function pinned to core 1' : 'not pinned (no taskset)'})\n`,
);
console.log('| cold start | DevStats | its floor | ratio | aim |\n|---|---|---|---|---|');
console.log(
  row('`process`: first delivery stored in Firestore and exported to Datadog', 'process', 'floorGrpc', '≤ 1.15'),
);
console.log(row('`process` with Firestore over REST (`DEVSTATS_FIRESTORE_REST=1`)', 'processRest', 'floorRest', ''));
console.log(row('the REST floor beside the gRPC floor', 'floorRest', 'floorGrpc', ''));
console.log(row('`ingest`: the first signed push published to Pub/Sub, 202', 'ingest', 'floorIngest', '≤ 1.15'));
console.log(row('the Pub/Sub floor beside a bare function', 'floorIngest', 'bare', ''));
