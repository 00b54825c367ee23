import { createHmac } from 'node:crypto';
import { SECRET_VARIABLES, type WebhookSource } from '../../shared/sources/registry.ts';

/** The same secrets for every webhook source (a new source needs no edit to the tests that use it). */
export function everySource(secrets: readonly string[]): Record<WebhookSource, string[]> {
  return Object.fromEntries(Object.keys(SECRET_VARIABLES).map((source) => [source, [...secrets]])) as Record<
    WebhookSource,
    string[]
  >;
}

/** Signs like the senders do, with the real algorithms, so tests exercise the real verifiers. */
export const sign = {
  github: (body: string | Buffer, secret: string) =>
    'sha256=' + createHmac('sha256', secret).update(body).digest('hex'),
  terraform: (body: string | Buffer, secret: string) => createHmac('sha512', secret).update(body).digest('hex'),
  bearer: (token: string) => `Bearer ${token}`,
  basic: (user: string, password: string) => 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64'),
};
