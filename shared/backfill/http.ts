import type { Logger } from '../log.ts';
import { BackfillDenied } from './core.ts';

/**
 * `fetch` for the history APIs that have no client library here (Spinnaker Gate, HCP Terraform,
 * CircleCI): JSON, a timeout per attempt, waits as the API asks on 429 (`Retry-After`, or
 * `X-RateLimit-Reset` as seconds or an epoch), backoff on 5xx and network errors, and a 401/403
 * turned into a BackfillDenied naming the token and the permission it needs.
 */
interface ApiFetchOptions {
  headers: Record<string, string>;
  logger: Logger;
  credential: string;
  retries?: number;
  backoffMs?: number;
  timeoutMs?: number;
  /** At most this many requests a second (HCP Terraform allows 30). */
  perSecond?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Seconds to wait, from the headers of a 429 (or a 503 that says when). */
export function waitFor(headers: Headers, now = Date.now()): number | undefined {
  const after = headers.get('retry-after');
  if (after !== null) {
    const seconds = Number(after);
    if (Number.isFinite(seconds)) return seconds;
    const at = Date.parse(after);
    if (!Number.isNaN(at)) return Math.max(0, (at - now) / 1000);
  }
  const reset = Number(headers.get('x-ratelimit-reset'));
  if (Number.isFinite(reset) && reset > 0) return reset > 1e9 ? Math.max(0, reset - now / 1000) : reset;
  return undefined;
}

export function apiClient(options: ApiFetchOptions): {
  getJson: (url: string) => Promise<unknown>;
  waits: () => number;
} {
  let waits = 0;
  let last = 0;
  const spacing = options.perSecond === undefined ? 0 : 1000 / options.perSecond;
  const retries = options.retries ?? 4;
  const backoff = options.backoffMs ?? 500;
  async function getJson(url: string): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      if (spacing > 0) {
        const wait = last + spacing - Date.now();
        last = Math.max(Date.now(), last + spacing);
        if (wait > 0) await sleep(wait);
      }
      let response: Response;
      try {
        response = await fetch(url, {
          headers: { accept: 'application/json', ...options.headers },
          signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
        });
      } catch (error) {
        if (attempt >= retries) throw error;
        options.logger.warn('history API unreachable; retrying', { url, attempt: attempt + 1 });
        await sleep(backoff * 2 ** attempt);
        continue;
      }
      if (response.status === 401 || response.status === 403) {
        await response.arrayBuffer();
        throw new BackfillDenied(`${url.split('?')[0] ?? url} answered ${response.status}: ${options.credential}`);
      }
      if (response.status === 429 || response.status >= 500) {
        const wait = waitFor(response.headers);
        await response.arrayBuffer();
        if (attempt >= retries)
          throw new Error(`${url.split('?')[0] ?? url} answered ${response.status} ${attempt + 1} times`);
        if (response.status === 429) waits++;
        await sleep(wait !== undefined ? Math.min(wait, 120) * 1000 : backoff * 2 ** attempt);
        continue;
      }
      if (!response.ok) throw new Error(`${url.split('?')[0] ?? url} answered ${response.status}`);
      return await response.json();
    }
  }
  return { getJson, waits: () => waits };
}
