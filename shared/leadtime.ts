import type { Deploy, PullRequest, Push, ShippedChange } from './events.ts';
import type { Settings } from './settings.ts';
import type { Store } from './store/store.ts';

/** Pushes walked back from one deploy at the most: a bound on work, far above any real gap. */
const MAX_PUSHES = 500;

const seconds = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / 1000;

/** Whether a deploy has lead times at all: successful, to production, with a commit to follow. */
export function shipsChanges(settings: Settings, deploy: Deploy): boolean {
  return (
    deploy.status === 'success' &&
    settings.productionEnvironments.includes(deploy.environment) &&
    deploy.commitSha !== undefined &&
    deploy.repository !== undefined
  );
}

/**
 * The commits a successful production deploy shipped: the pushes between the previous successful
 * production deploy's sha and this deploy's sha, walked back from `after` to `before`; for a
 * service's first deploy, only the push that introduced the sha. Returns undefined while the
 * chain cannot be followed yet (its pushes have not arrived), so the deploy waits for them.
 * DESIGN.md, "Lead time for changes".
 */
export async function resolveShipped(store: Store, deploy: Deploy): Promise<ShippedChange[] | undefined> {
  const repository = deploy.repository;
  const sha = deploy.commitSha;
  if (repository === undefined || sha === undefined) return [];
  const previous = await store.previousSuccessfulDeploy(deploy.service, deploy.environment, deploy.finishedAt);
  const stopAt = previous?.repository === repository ? previous.commitSha : undefined;
  if (stopAt === sha) return []; // a redeploy of what was already live ships nothing

  const shas: string[] = [];
  let cursor = sha;
  for (let walked = 0; walked < MAX_PUSHES; walked++) {
    const push: Push | undefined = (await store.pushesTo(repository, cursor))[0];
    if (push === undefined) break;
    const cut = stopAt === undefined ? -1 : push.commitShas.indexOf(stopAt);
    // Newest first; when the previous deploy's sha sits inside this push, only what came after it.
    shas.unshift(...(cut >= 0 ? push.commitShas.slice(cut + 1) : push.commitShas));
    if (cut >= 0 || stopAt === undefined || push.before === stopAt) break;
    cursor = push.before;
    if (/^0+$/.test(cursor)) break; // the branch's first push
  }

  if (shas.length === 0) {
    // No push recorded the sha: a merged pull request's merge commit stands for its commits.
    const pr = await store.pullRequestByMergeSha(repository, sha);
    if (pr === undefined) return undefined;
    return [shippedChange(deploy, repository, sha, 'pull_request', pr.createdAt, pr)];
  }

  const shipped: ShippedChange[] = [];
  for (const commitSha of shas) {
    const commit = await store.commit(repository, commitSha);
    if (commit === undefined) continue;
    const pr = await store.pullRequestByMergeSha(repository, commitSha);
    shipped.push(shippedChange(deploy, repository, commitSha, 'push', commit.timestamp, pr));
  }
  return shipped;
}

function shippedChange(
  deploy: Deploy,
  repository: string,
  sha: string,
  via: ShippedChange['via'],
  committedAt: string,
  pr: PullRequest | undefined,
): ShippedChange {
  return {
    id: `${deploy.id}|${sha}`,
    deployId: deploy.id,
    service: deploy.service,
    environment: deploy.environment,
    repository,
    sha,
    via,
    committedAt,
    deployedAt: deploy.finishedAt,
    leadTimeSeconds: seconds(committedAt, deploy.finishedAt),
    ...(pr === undefined
      ? {}
      : {
          pullRequest: {
            number: pr.number,
            createdAt: pr.createdAt,
            mergedAt: pr.mergedAt,
            reviewSeconds: seconds(pr.createdAt, pr.mergedAt),
            timeToDeploySeconds: seconds(pr.mergedAt, deploy.finishedAt),
          },
        }),
  };
}

/**
 * Resolves what a deploy shipped and records it, or leaves it waiting for its pushes. Returns the
 * shipped changes recorded for the first time (none again on a redelivery).
 */
export async function settleLeadTime(store: Store, deploy: Deploy): Promise<ShippedChange[]> {
  const shipped = await resolveShipped(store, deploy);
  return shipped === undefined ? [] : store.recordShipped(deploy.id, shipped);
}
