import type { Octokit } from '@octokit/rest';
import type { Logger } from '../log.ts';

/**
 * GitHub's REST API through octokit, with its throttling plugin (it honours `Retry-After` and
 * `X-RateLimit-*`, waiting as GitHub asks) and its retry plugin (5xx and network errors, with
 * backoff). `baseUrl` points it at GitHub Enterprise Server (`https://ghe.example.com/api/v3`) or a
 * test server. Imported on first use: only the commands that speak to GitHub load it.
 */
interface GithubClientOptions {
  token: string;
  baseUrl?: string | undefined;
  logger: Logger;
  /** Retries of one request on 5xx and network errors. */
  retries?: number;
  /** Called each time a rate limit makes it wait. */
  onWait?: () => void;
}

export async function githubClient(options: GithubClientOptions): Promise<Octokit> {
  const [{ Octokit: Base }, { throttling }, { retry }] = await Promise.all([
    import('@octokit/rest'),
    import('@octokit/plugin-throttling'),
    import('@octokit/plugin-retry'),
  ]);
  const Client = Base.plugin(throttling, retry);
  const { logger } = options;
  return new Client({
    auth: options.token,
    ...(options.baseUrl ? { baseUrl: options.baseUrl.replace(/\/$/, '') } : {}),
    userAgent: 'devstats',
    request: { retries: options.retries ?? 3, retryAfter: 1 },
    throttle: {
      onRateLimit: (
        retryAfter: number,
        request: { method: string; url: string },
        _octokit: unknown,
        retryCount: number,
      ) => {
        logger.warn('GitHub rate limit: waiting as it asks', { retryAfter, url: request.url, retryCount });
        options.onWait?.();
        return retryCount < 5;
      },
      onSecondaryRateLimit: (
        retryAfter: number,
        request: { method: string; url: string },
        _octokit: unknown,
        retryCount: number,
      ) => {
        logger.warn('GitHub secondary rate limit: waiting as it asks', { retryAfter, url: request.url, retryCount });
        options.onWait?.();
        return retryCount < 5;
      },
    },
    log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
  });
}
