# The dashboard is kept as JSON (infra/dashboard.json) so `devstats dashboard push` can send the same
# definition to teams that do not manage Datadog with Terraform. Both tailor it to the configuration
# (shared/dashboard.ts): the `env` variable lists the production environments, and the daily
# figures name the reporting time zone.
locals {
  devstats_settings       = var.devstats_config_file == "" ? {} : yamldecode(file(var.devstats_config_file))
  production_environments = try(local.devstats_settings.productionEnvironments, ["production"])
  reporting_timezone      = try(local.devstats_settings.timezone, "UTC")
  dashboard_template      = jsondecode(replace(file("${path.module}/dashboard.json"), "days in UTC", "days in ${local.reporting_timezone}"))
}

resource "datadog_dashboard_json" "devstats" {
  dashboard = jsonencode(merge(local.dashboard_template, {
    template_variables = [
      for variable in local.dashboard_template.template_variables :
      variable.name == "env" ? merge(variable, {
        default          = local.production_environments[0]
        available_values = local.production_environments
      }) : variable
    ]
  }))
}

# Percentiles (p50, p90, p95…) on every DevStats distribution.
locals {
  distributions = {
    "devstats.lead_time"                       = ["service", "env", "team"]
    "devstats.pr.review_time"                  = ["service", "env", "team"]
    "devstats.pr.time_to_deploy"               = ["service", "env", "team"]
    "devstats.deploy.duration"                 = ["service", "env", "team", "status"]
    "devstats.time_to_restore"                 = ["service", "env", "team"]
    "devstats.failed_deployment_recovery_time" = ["service", "team"]
    "devstats.promotion_time"                  = ["service", "team", "from", "to"]
    "devstats.pipeline.lag"                    = ["source"]
  }
}

resource "datadog_metric_tag_configuration" "percentiles" {
  for_each            = local.distributions
  metric_name         = each.key
  metric_type         = "distribution"
  tags                = each.value
  include_percentiles = true
}

resource "datadog_monitor" "pipeline_lag" {
  name    = "DevStats: deploys reach Datadog late"
  type    = "query alert"
  query   = "percentile(last_15m):p95:devstats.pipeline.lag{*} > ${var.pipeline_lag_threshold_seconds}"
  message = <<-EOT
    DevStats' p95 time from a webhook's receipt to its export to Datadog is over ${var.pipeline_lag_threshold_seconds} s.
    Dashboards are behind. Look at the process function's logs and the dead-letter subscription. ${var.monitor_notify}
  EOT
  monitor_thresholds {
    critical = var.pipeline_lag_threshold_seconds
  }
  notify_no_data = false
  tags           = ["service:devstats"]
}

resource "datadog_monitor" "source_silent" {
  name    = "DevStats: {{source.name}} has gone silent"
  type    = "query alert"
  query   = "max(last_30m):max:devstats.source.silence{*} by {source} > ${var.source_silence_hours * 3600}"
  message = <<-EOT
    No delivery from {{source.name}} has been processed for over ${var.source_silence_hours} h: its webhook may
    be failing (a rotated secret answered 401, a changed URL) or its notifications were turned off. Run
    `devstats doctor`, and look at the webhook's recent deliveries in {{source.name}}. ${var.monitor_notify}
  EOT
  monitor_thresholds {
    critical = var.source_silence_hours * 3600
  }
  notify_no_data = false
  tags           = ["service:devstats"]
}

# gcp.pubsub.* comes from Datadog's Google Cloud integration, not from DevStats.
resource "datadog_monitor" "dead_letters" {
  name    = "DevStats: deliveries dead-lettered"
  type    = "query alert"
  query   = "max(last_10m):max:gcp.pubsub.subscription.num_undelivered_messages{subscription_id:devstats-dead-letter-inspect} > 0"
  message = <<-EOT
    Messages failed every delivery attempt and are in devstats-dead-letter-inspect: their deploys or changes
    are not counted until replayed. Look at the process function's logs for why. ${var.monitor_notify}
  EOT
  monitor_thresholds {
    critical = 0
  }
  tags = ["service:devstats"]
}
