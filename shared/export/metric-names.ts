/** Every metric DevStats sends to Datadog: the dashboard and monitors may query only these. */
export const METRIC = {
  deploys: 'devstats.deploys',
  deploysPerDeveloperPerDay: 'devstats.deploys_per_developer_per_day',
  developersActive: 'devstats.developers.active',
  changeFailureRate: 'devstats.change_failure_rate',
  leadTime: 'devstats.lead_time',
  prReviewTime: 'devstats.pr.review_time',
  prTimeToDeploy: 'devstats.pr.time_to_deploy',
  deployDuration: 'devstats.deploy.duration',
  timeToRestore: 'devstats.time_to_restore',
  /** DORA's failed deployment recovery time: a failed or rolled-back deploy to its restore ({service, team}). */
  failedDeploymentRecoveryTime: 'devstats.failed_deployment_recovery_time',
  reworkRate: 'devstats.rework_rate',
  /** A production deploy's finish − its sha's first deploy to an earlier stage ({service, team, from, to}). */
  promotionTime: 'devstats.promotion_time',
  pipelineLag: 'devstats.pipeline.lag',
  /** Seconds since each source's last processed delivery (gauge, `source:<name>`), at every rollup. */
  sourceSilence: 'devstats.source.silence',
} as const;

/** The distributions (Datadog computes percentiles for these when enabled). */
export const DISTRIBUTIONS: readonly string[] = [
  METRIC.leadTime,
  METRIC.prReviewTime,
  METRIC.prTimeToDeploy,
  METRIC.deployDuration,
  METRIC.timeToRestore,
  METRIC.failedDeploymentRecoveryTime,
  METRIC.promotionTime,
  METRIC.pipelineLag,
];
