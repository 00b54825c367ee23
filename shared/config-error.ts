/**
 * Something the operator must fix before DevStats can start (an invalid variable or configuration
 * file, a data directory it cannot write): stopped with one line naming it, never a stack trace.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
}
