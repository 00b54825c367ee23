import { z } from 'zod';
import { type Admission, type Admit, invalid } from './admission.ts';

// https://docs.github.com/en/webhooks/webhook-events-and-payloads
const Repository = z.object({ full_name: z.string().min(1) });

const PushEnvelope = z.object({
  ref: z.string().min(1),
  before: z.string(),
  after: z.string(),
  deleted: z.boolean().optional(),
  repository: Repository,
  commits: z.array(z.unknown()),
});

const PullRequestEnvelope = z.object({
  action: z.string(),
  number: z.number().int(),
  pull_request: z.object({ merged: z.boolean().nullish() }),
  repository: Repository,
});

const DeploymentStatusEnvelope = z.object({
  deployment_status: z.object({ state: z.string(), environment: z.string().min(1) }),
  deployment: z.object({ id: z.number().int(), sha: z.string().min(1) }),
  repository: Repository,
});

/** The deployment states that end a deployment; the others (queued, in_progress, …) say nothing yet. */
export const TERMINAL_DEPLOYMENT_STATES = new Set(['success', 'failure', 'error']);

export const admitGithub: Admit = (headers, body): Admission => {
  const eventType = headers['x-github-event'];
  if (eventType === undefined || eventType === '') {
    return { kind: 'invalid', field: 'X-GitHub-Event', problem: 'header is required' };
  }
  const deliveryId = headers['x-github-delivery'];
  if (deliveryId === undefined || deliveryId === '') {
    return { kind: 'invalid', field: 'X-GitHub-Delivery', problem: 'header is required' };
  }
  switch (eventType) {
    case 'ping':
      return { kind: 'answer', eventType, message: 'pong' };
    case 'push': {
      const push = PushEnvelope.safeParse(body);
      if (!push.success) return invalid(push.error);
      if (push.data.deleted === true)
        return { kind: 'answer', eventType, message: 'a branch deletion ships no commits' };
      return { kind: 'publish', eventType, deliveryId };
    }
    case 'pull_request': {
      const pr = PullRequestEnvelope.safeParse(body);
      if (!pr.success) return invalid(pr.error);
      // A closed, unmerged pull request still carries a merge_commit_sha: only `merged` counts.
      if (pr.data.action !== 'closed' || pr.data.pull_request.merged !== true) {
        return { kind: 'answer', eventType, message: 'only merged pull requests are counted' };
      }
      return { kind: 'publish', eventType, deliveryId };
    }
    case 'deployment_status': {
      const status = DeploymentStatusEnvelope.safeParse(body);
      if (!status.success) return invalid(status.error);
      if (!TERMINAL_DEPLOYMENT_STATES.has(status.data.deployment_status.state)) {
        return {
          kind: 'answer',
          eventType,
          message: `deployment state ${status.data.deployment_status.state} is not final`,
        };
      }
      return { kind: 'publish', eventType, deliveryId };
    }
    default:
      // `deployment` and `workflow_run` would double-count deploys; the rest carry no deploy or change.
      return { kind: 'answer', eventType, message: `${eventType} events are not counted` };
  }
};
