/**
 * Structured logs: one JSON line per entry, in the shape Cloud Logging reads
 * (https://cloud.google.com/logging/docs/structured-logging). Fields are flat; payloads and
 * secrets are never logged.
 */
type Severity = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

export function createLogger(write: (line: string) => void = (line) => process.stdout.write(line + '\n')): Logger {
  const entry =
    (severity: Severity) =>
    (message: string, fields: LogFields = {}) => {
      write(JSON.stringify({ severity, message, ...fields }));
    };
  return { debug: entry('DEBUG'), info: entry('INFO'), warn: entry('WARNING'), error: entry('ERROR') };
}

/** A logger that keeps its entries, for tests that assert what an operator would read. */
export function memoryLogger(): Logger & { entries: Array<{ severity: Severity; message: string } & LogFields> } {
  const entries: Array<{ severity: Severity; message: string } & LogFields> = [];
  const logger = createLogger((line) => entries.push(JSON.parse(line) as (typeof entries)[number]));
  return Object.assign(logger, { entries });
}
