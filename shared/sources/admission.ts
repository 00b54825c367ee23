import type * as z from 'zod';
import type { Headers } from './auth.ts';

/**
 * What `ingest` makes of an authentic delivery, before anything is published:
 * publish it, answer 200 without publishing (pings, verifications, deliveries with nothing
 * to count), or refuse it as not the source's envelope (400, naming the field).
 */
export type Admission =
  | {
      kind: 'publish';
      eventType: string;
      deliveryId: string;
      /** What the sender should fix though the delivery counts (fields ignored): shown in the 202. */
      warnings?: readonly string[];
    }
  | { kind: 'answer'; eventType: string; message: string }
  | { kind: 'invalid'; field: string; problem: string };

/** Reads a parsed JSON body and the headers of one source's deliveries. */
export type Admit = (headers: Headers, body: unknown) => Admission;

/** The first problem zod found, as the 400 answer names it. */
export function invalid(error: z.ZodError, prefix = ''): Admission {
  const issue = error.issues[0];
  const path = issue === undefined ? '' : issue.path.map(String).join('.');
  const field = prefix === '' ? path : path === '' ? prefix : `${prefix}.${path}`;
  return { kind: 'invalid', field: field === '' ? '(body)' : field, problem: issue?.message ?? 'invalid' };
}
