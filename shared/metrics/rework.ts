import picomatch from 'picomatch';
import {
  commitId,
  type Commit,
  type Deploy,
  type Incident,
  type PullRequest,
  pullRequestId,
  type ShippedChange,
} from '../events/model.ts';
import type { Settings } from '../events/settings.ts';
import { byFinish, incidentLinks, productionDeploymentsIn, type TeamScope } from './definitions.ts';
import { rollbackDeploys } from './failures.ts';

/**
 * Deployment rework rate (DESIGN.md; DORA 2024 on): unplanned production deployments ÷ production
 * deployments. A deployment is unplanned, and the first rule that holds says why:
 * - `rollback`: it went back to a sha first deployed earlier (the rollback rule of failures.ts);
 * - `revert`: a change it shipped first is a revert (commit message, or a revert pull request);
 * - `hotfix_label`: a pull request it shipped carries a `hotfix.labels` label;
 * - `hotfix_branch`: a pull request it shipped came from, or a commit it shipped was pushed to, a
 *   branch matching `hotfix.branches`;
 * - `open_incident`: it finished while a production incident of its service was open (started at
 *   or before, not resolved by, its finish).
 * "Shipped" is what lead time counts: the commits this deploy was the first to bring to production.
 */
export type ReworkRule = 'rollback' | 'revert' | 'hotfix_label' | 'hotfix_branch' | 'open_incident';

export interface Rework {
  deploy: Deploy;
  rule: ReworkRule;
  /** What matched: the revert's sha, the label, the branch, the incident. */
  detail: string;
}

export interface ReworkData {
  history: readonly Deploy[];
  incidents: readonly Incident[];
  shipped: readonly ShippedChange[];
  commits: readonly Commit[];
  pullRequests: readonly PullRequest[];
}

/** Each unplanned production deployment of the team finished in the window, with its rule. */
export function reworkIn(
  settings: Settings,
  scope: TeamScope,
  window: { from: string; to: string },
  data: ReworkData,
): Rework[] {
  const deploys = productionDeploymentsIn(settings, scope, window, data.history).sort(byFinish);
  if (deploys.length === 0) return [];
  const rollbacks = rollbackDeploys(settings, scope, data.history);
  const commits = new Map(data.commits.map((c) => [c.id, c]));
  const pullRequests = new Map(data.pullRequests.map((p) => [p.id, p]));
  const byMergeCommit = new Map(data.pullRequests.map((p) => [commitId(p.repository, p.mergeCommitSha), p]));
  const shippedBy = new Map<string, ShippedChange[]>();
  for (const s of data.shipped) {
    const list = shippedBy.get(s.deployId);
    if (list === undefined) shippedBy.set(s.deployId, [s]);
    else list.push(s);
  }
  const labels = new Set(settings.hotfix.labels.map((l) => l.toLowerCase()));
  const hotfixBranch = settings.hotfix.branches.length > 0 ? picomatch(settings.hotfix.branches) : () => false;
  const open = incidentLinks(settings, scope, data.incidents, data.history).flatMap(({ incident, deploy }) => {
    const service = incident.service ?? deploy?.service;
    return service === undefined ? [] : [{ incident, service }];
  });

  const ruleOf = (deploy: Deploy): Omit<Rework, 'deploy'> | undefined => {
    if (rollbacks.has(deploy.id))
      return { rule: 'rollback', detail: `back to ${deploy.commitSha ?? 'an earlier sha'}` };
    const changes = (shippedBy.get(deploy.id) ?? []).map((s) => {
      const pr =
        (s.pullRequest === undefined
          ? undefined
          : pullRequests.get(pullRequestId(s.repository, s.pullRequest.number))) ??
        byMergeCommit.get(commitId(s.repository, s.sha));
      return { shipped: s, commit: commits.get(commitId(s.repository, s.sha)), pr };
    });
    for (const { shipped, commit, pr } of changes) {
      if (commit?.revert === true) return { rule: 'revert', detail: `${shipped.repository}@${shipped.sha}` };
      if (pr?.revert === true) return { rule: 'revert', detail: `${pr.repository}#${pr.number}` };
    }
    for (const { pr } of changes) {
      const label = pr?.labels?.find((l) => labels.has(l.toLowerCase()));
      if (pr !== undefined && label !== undefined)
        return { rule: 'hotfix_label', detail: `${pr.repository}#${pr.number} ${label}` };
    }
    for (const { commit, pr } of changes) {
      if (pr?.headRef !== undefined && hotfixBranch(pr.headRef))
        return { rule: 'hotfix_branch', detail: `${pr.repository}#${pr.number} from ${pr.headRef}` };
      if (commit !== undefined && hotfixBranch(commit.branch))
        return { rule: 'hotfix_branch', detail: `${commit.repository}@${commit.sha} on ${commit.branch}` };
    }
    const during = open.find(
      ({ incident, service }) =>
        service === deploy.service &&
        incident.startedAt <= deploy.finishedAt &&
        (incident.resolvedAt === undefined || deploy.finishedAt < incident.resolvedAt),
    );
    if (during !== undefined) return { rule: 'open_incident', detail: during.incident.id };
    return undefined;
  };
  return deploys.flatMap((deploy) => {
    const rule = ruleOf(deploy);
    return rule === undefined ? [] : [{ deploy, ...rule }];
  });
}

/** Rework ÷ production deployments in the window; undefined when there were none. */
export function reworkRate(
  settings: Settings,
  scope: TeamScope,
  window: { from: string; to: string },
  data: ReworkData,
): { rate: number; rework: number; deployments: number } | undefined {
  const deployments = productionDeploymentsIn(settings, scope, window, data.history).length;
  if (deployments === 0) return undefined;
  const rework = reworkIn(settings, scope, window, data).length;
  return { rate: rework / deployments, rework, deployments };
}
