output "webhook_urls" {
  description = "Where each source posts its webhooks."
  value = {
    github      = "${google_cloudfunctions2_function.ingest.service_config[0].uri}/github"
    spinnaker   = "${google_cloudfunctions2_function.ingest.service_config[0].uri}/spinnaker"
    terraform   = "${google_cloudfunctions2_function.ingest.service_config[0].uri}/terraform"
    circleci    = "${google_cloudfunctions2_function.ingest.service_config[0].uri}/circleci"
    deployments = "${google_cloudfunctions2_function.ingest.service_config[0].uri}/deployments"
    pagerduty   = "${google_cloudfunctions2_function.ingest.service_config[0].uri}/pagerduty"
    opsgenie    = "${google_cloudfunctions2_function.ingest.service_config[0].uri}/opsgenie"
    datadog     = "${google_cloudfunctions2_function.ingest.service_config[0].uri}/datadog"
  }
}

output "spinnaker_events_topic" {
  description = "The topic for Spinnaker Echo's Google Pub/Sub publisher."
  value       = google_pubsub_topic.spinnaker_events.id
}

output "dead_letter_subscription" {
  description = "Messages that failed every delivery attempt, for inspection."
  value       = google_pubsub_subscription.dead_letter.id
}

output "dashboard_url" {
  description = "The DevStats dashboard in Datadog."
  value       = "https://app.${var.datadog_site}${datadog_dashboard_json.devstats.url}"
}
