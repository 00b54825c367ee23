import type { Admit } from './admission.ts';
import type { Authenticator } from './auth.ts';
import type { Normalizer } from './normalize.ts';

/**
 * A source that posts webhooks to `ingest`: everything about it that ingest, process, the
 * configuration, doctor and the live view need, in its own file, listed once in `registry.ts`.
 */
export interface WebhookSourceShape {
  /** The `source` attribute of its messages, and the key of its secret. */
  name: string;
  /** Its route at ingest. */
  path: `/${string}`;
  /** The environment variable holding its secret (`<variable>_FILE` for a file). */
  secretVariable: string;
  /** The header its credentials come in (lower case): without it, a body is not worth keeping. */
  credential: string;
  authenticate: Authenticator;
  admit: Admit;
  normalize: Normalizer;
}

/** A source that arrives only on a Pub/Sub topic or from `devstats backfill`: no route, no secret. */
export interface TopicSourceShape {
  name: string;
  normalize: Normalizer;
}
