import type { Octokit } from '@octokit/rest';
import type { Logger } from '../log.ts';

/**
 * GitHub never retries a failed webhook delivery. `devstats redeliver github` lists a hook's
 * deliveries through the REST API and asks GitHub to redeliver each that failed (its status code
 * is not 2xx, or GitHub could not connect) and that no later delivery of the same event (GUID)
 * made good. Redelivered events keep their GUID (X-GitHub-Delivery), so DevStats stores them once.
 * https://docs.github.com/en/webhooks/testing-and-troubleshooting-webhooks/redelivering-webhooks
 */
type HookRef =
  { kind: 'repo'; owner: string; repo: string; hookId: number } | { kind: 'org'; org: string; hookId: number };

/** `repo:acme/billing:123` or `org:acme:456`, comma-separated (DEVSTATS_GITHUB_HOOKS). */
export function parseHooks(value: string | undefined): HookRef[] {
  if (value === undefined || value.trim() === '') return [];
  return value.split(',').map((entry) => {
    const text = entry.trim();
    const repo = /^repo:([^/\s:]+)\/([^/\s:]+):(\d+)$/.exec(text);
    if (repo) return { kind: 'repo', owner: repo[1] ?? '', repo: repo[2] ?? '', hookId: Number(repo[3]) };
    const org = /^org:([^/\s:]+):(\d+)$/.exec(text);
    if (org) return { kind: 'org', org: org[1] ?? '', hookId: Number(org[2]) };
    throw new RangeError(
      `DEVSTATS_GITHUB_HOOKS: "${text}" is not repo:<owner>/<name>:<hook id> or org:<org>:<hook id>`,
    );
  });
}

const hookName = (hook: HookRef) =>
  hook.kind === 'repo' ? `${hook.owner}/${hook.repo} hook ${hook.hookId}` : `org ${hook.org} hook ${hook.hookId}`;

interface Delivery {
  id: number;
  guid: string;
  delivered_at: string;
  status_code: number;
  event: string;
}

interface RedeliverResult {
  hook: string;
  listed: number;
  failed: number;
  redelivered: number;
}

const ok = (d: Delivery) => d.status_code >= 200 && d.status_code < 300;

export async function redeliverFailed(
  octokit: Octokit,
  hooks: HookRef[],
  options: { since: string; dryRun: boolean; logger: Logger },
): Promise<RedeliverResult[]> {
  const results: RedeliverResult[] = [];
  for (const hook of hooks) {
    // Newest first; stop paging once past --since.
    const deliveries: Delivery[] = [];
    const pages =
      hook.kind === 'repo'
        ? octokit.paginate.iterator(octokit.rest.repos.listWebhookDeliveries, {
            owner: hook.owner,
            repo: hook.repo,
            hook_id: hook.hookId,
            per_page: 100,
          })
        : octokit.paginate.iterator(octokit.rest.orgs.listWebhookDeliveries, {
            org: hook.org,
            hook_id: hook.hookId,
            per_page: 100,
          });
    for await (const page of pages) {
      const inRange = (page.data as Delivery[]).filter((d) => new Date(d.delivered_at).toISOString() >= options.since);
      deliveries.push(...inRange);
      if (inRange.length < page.data.length) break;
    }
    const madeGood = new Set(deliveries.filter(ok).map((d) => d.guid));
    const failed = [
      ...new Map(deliveries.filter((d) => !ok(d) && !madeGood.has(d.guid)).map((d) => [d.guid, d])).values(),
    ];
    let redelivered = 0;
    for (const delivery of failed) {
      if (options.dryRun) continue;
      if (hook.kind === 'repo')
        await octokit.rest.repos.redeliverWebhookDelivery({
          owner: hook.owner,
          repo: hook.repo,
          hook_id: hook.hookId,
          delivery_id: delivery.id,
        });
      else
        await octokit.rest.orgs.redeliverWebhookDelivery({
          org: hook.org,
          hook_id: hook.hookId,
          delivery_id: delivery.id,
        });
      redelivered++;
    }
    options.logger.info('GitHub deliveries checked', {
      hook: hookName(hook),
      listed: deliveries.length,
      failed: failed.length,
      redelivered,
    });
    results.push({ hook: hookName(hook), listed: deliveries.length, failed: failed.length, redelivered });
  }
  return results;
}
