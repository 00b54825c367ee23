# Every webhook secret and the Datadog API key live in Secret Manager. ingest reads the webhook
# secrets from files (mounted volumes), again every DEVSTATS_SECRET_TTL_MS, so a rotation reaches
# warm instances; process and rollup read the Datadog key as a variable at instance start.
locals {
  webhook_secret_env = {
    github      = "GITHUB_WEBHOOK_SECRET"
    spinnaker   = "SPINNAKER_WEBHOOK_TOKEN"
    terraform   = "TERRAFORM_NOTIFICATION_TOKEN"
    circleci    = "CIRCLECI_WEBHOOK_SECRET"
    deployments = "DEPLOY_WEBHOOK_TOKEN"
    pagerduty   = "PAGERDUTY_WEBHOOK_SECRET"
    opsgenie    = "OPSGENIE_WEBHOOK_TOKEN"
    datadog     = "DATADOG_WEBHOOK_TOKEN"
  }
  # Only the sources given a secret are wired: an unset secret makes ingest refuse that source.
  webhook_sources = toset([for k, v in nonsensitive(var.webhook_secrets) : k if v != ""])
}

resource "google_secret_manager_secret" "webhook" {
  for_each  = local.webhook_sources
  secret_id = "devstats-webhook-${each.key}"
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "webhook" {
  for_each    = local.webhook_sources
  secret      = google_secret_manager_secret.webhook[each.key].id
  secret_data = var.webhook_secrets[each.key]
}

resource "google_secret_manager_secret" "datadog_api_key" {
  secret_id = "devstats-datadog-api-key"
  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "datadog_api_key" {
  secret      = google_secret_manager_secret.datadog_api_key.id
  secret_data = var.datadog_api_key
}

resource "google_secret_manager_secret_iam_member" "ingest_webhooks" {
  for_each  = local.webhook_sources
  secret_id = google_secret_manager_secret.webhook[each.key].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.ingest.email}"
}

resource "google_secret_manager_secret_iam_member" "datadog_key" {
  for_each  = { process = google_service_account.process.email, rollup = google_service_account.rollup.email }
  secret_id = google_secret_manager_secret.datadog_api_key.id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${each.value}"
}
