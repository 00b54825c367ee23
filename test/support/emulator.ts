import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { after, before } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.ts';

export interface Emulator {
  /** host:port, the value of PUBSUB_EMULATOR_HOST / FIRESTORE_EMULATOR_HOST. */
  host: string;
  stop(): Promise<void>;
}

/** Whether gcloud and the emulator component are installed; CI must have them (.ci/run installs them). */
export function emulatorAvailable(kind: 'pubsub' | 'firestore'): boolean {
  const probe = spawnSync('gcloud', ['beta', 'emulators', kind, '--help'], { stdio: 'ignore', timeout: 30_000 });
  return probe.status === 0 && spawnSync('java', ['-version'], { stdio: 'ignore' }).status === 0;
}

/** The reason to skip a test for want of an emulator, or undefined; under CI=true it never skips. */
export function skipUnlessEmulator(kind: 'pubsub' | 'firestore'): string | undefined {
  if (emulatorAvailable(kind)) return undefined;
  if (process.env.CI === 'true') throw new Error(`CI=true but the ${kind} emulator is not installed`);
  return `the ${kind} emulator is not installed (gcloud beta emulators ${kind})`;
}

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) killGroup(child, 'SIGKILL');
});

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal); // gcloud's Java child is in the same group
  } catch {
    // already gone
  }
}

/**
 * Starts `gcloud beta emulators <kind> start` in its own process group on a free loopback port
 * and waits until it answers HTTP. `stop()` ends the whole group, Java child included.
 */
export async function startEmulator(kind: 'pubsub' | 'firestore'): Promise<Emulator> {
  // The clients need no Google credentials against an emulator: do not probe for a metadata server.
  process.env.METADATA_SERVER_DETECTION ??= 'none';
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const dataDir = mkdtempSync(join(tmpdir(), `devstats-${kind}-`));
  const args = ['beta', 'emulators', kind, 'start', `--host-port=${host}`, '--quiet'];
  if (kind === 'pubsub') args.push(`--data-dir=${dataDir}`);
  const child = spawn('gcloud', args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      resolve();
    }),
  );

  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${kind} emulator exited: ${output}`);
    try {
      const response = await fetch(`http://${host}/`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      killGroup(child, 'SIGKILL');
      throw new Error(`${kind} emulator did not start within 90 s: ${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }

  return {
    host,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        killGroup(child, 'SIGTERM');
        const forced = setTimeout(() => {
          killGroup(child, 'SIGKILL');
        }, 5000);
        await exited;
        clearTimeout(forced);
      }
      running.delete(child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * In a suite: the Firestore emulator started before its tests, with FIRESTORE_EMULATOR_HOST naming
 * it, and stopped after them. Each test opens a project of its own on it for a clean database.
 */
export function useFirestoreEmulator(): void {
  let emulator: Emulator | undefined;
  before(async () => {
    emulator = await startEmulator('firestore');
    process.env.FIRESTORE_EMULATOR_HOST = emulator.host;
  });
  after(async () => {
    await emulator?.stop();
    delete process.env.FIRESTORE_EMULATOR_HOST;
  });
}
