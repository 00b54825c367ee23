import type * as z from 'zod';
import type { CanonicalEvent } from '../events/model.ts';
import type { Settings } from '../events/settings.ts';

/** What every normaliser may use beside the payload. */
export interface NormalizeContext {
  settings: Settings;
  /** When ingest received the delivery: stands in for times a payload does not carry. */
  receivedAt: string;
}

/** A payload that passed ingest's envelope check but not the normaliser's schema: permanent, never retried. */
export class UnusablePayload extends Error {
  override name = 'UnusablePayload';
}

export type Normalizer = (body: unknown, eventType: string, context: NormalizeContext) => CanonicalEvent[];

/** The payload as `schema` reads it, or an UnusablePayload naming the first failing field. */
export function parseOrThrow<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new UnusablePayload(`${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
}
