// What several benchmarks share: a child's CPU time, and waiting for a server to answer.
import { readFileSync } from 'node:fs';

/** A process's CPU time so far (user + system), in µs: /proc/<pid>/stat counts it in 1/100 s ticks. */
export function cpuMicros(pid: number | undefined): number {
  const fields =
    readFileSync(`/proc/${String(pid)}/stat`, 'utf8')
      .split(') ')[1]
      ?.split(' ') ?? [];
  // After the command name, state is field 3: utime (14) and stime (15) are at 11 and 12 here.
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

/** Until `http://127.0.0.1:<port>/healthz` answers at all. */
export async function untilAnswering(port: number): Promise<void> {
  for (;;) {
    try {
      await fetch(`http://127.0.0.1:${port}/healthz`);
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
