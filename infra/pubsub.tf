locals {
  topics = {
    raw        = "devstats-raw"
    tick       = "devstats-tick"
    dead       = "devstats-dead-letter"
    dead_ticks = "devstats-dead-letter-ticks"
    spinnaker  = "spinnaker-events"
    cloudbuild = "cloud-builds"
  }
}

resource "google_pubsub_topic" "raw" {
  name = local.topics.raw
}

resource "google_pubsub_topic" "tick" {
  name = local.topics.tick
}

resource "google_pubsub_topic" "dead_letter" {
  name = local.topics.dead
}

# Rollup ticks that failed are dead-lettered apart from data: `devstats replay` resends deliveries,
# and a missed tick is worth nothing (the next one does its work).
resource "google_pubsub_topic" "dead_ticks" {
  name                       = local.topics.dead_ticks
  message_retention_duration = "86400s"
}

# Spinnaker Echo's Google Pub/Sub publisher (pubsub.google.publishers) publishes here.
resource "google_pubsub_topic" "spinnaker_events" {
  name = local.topics.spinnaker
}

# Cloud Build announces every build on cloud-builds, and creates the topic itself.
resource "google_pubsub_topic" "cloud_builds" {
  count = var.manage_cloud_builds_topic ? 1 : 0
  name  = local.topics.cloudbuild
}

# What was dead-lettered, kept for a week for inspection (and `devstats replay`).
resource "google_pubsub_subscription" "dead_letter" {
  name                       = "devstats-dead-letter-inspect"
  topic                      = google_pubsub_topic.dead_letter.id
  message_retention_duration = "604800s"
  expiration_policy {
    ttl = ""
  }
}

# Push subscriptions drive process and rollup: the path names the topic, so functions-framework hands
# process a CloudEvent whose source names it (direct sources are told apart by topic).
locals {
  process_topics = {
    raw        = google_pubsub_topic.raw.name
    spinnaker  = google_pubsub_topic.spinnaker_events.name
    cloudbuild = local.topics.cloudbuild
  }
}

resource "google_pubsub_subscription" "process" {
  for_each = local.process_topics
  name     = "devstats-process-${each.value}"
  topic    = "projects/${var.project_id}/topics/${each.value}"

  ack_deadline_seconds = 60
  push_config {
    push_endpoint = "${google_cloudfunctions2_function.process.service_config[0].uri}/projects/${var.project_id}/topics/${each.value}"
    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = google_cloudfunctions2_function.process.service_config[0].uri
    }
  }
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = var.max_delivery_attempts
  }
  depends_on = [google_pubsub_topic.cloud_builds]
}

resource "google_pubsub_subscription" "rollup" {
  name                 = "devstats-rollup"
  topic                = google_pubsub_topic.tick.id
  ack_deadline_seconds = 300
  push_config {
    push_endpoint = "${google_cloudfunctions2_function.rollup.service_config[0].uri}/projects/${var.project_id}/topics/${google_pubsub_topic.tick.name}"
    oidc_token {
      service_account_email = google_service_account.pusher.email
      audience              = google_cloudfunctions2_function.rollup.service_config[0].uri
    }
  }
  retry_policy {
    minimum_backoff = "30s"
    maximum_backoff = "300s"
  }
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_ticks.id
    max_delivery_attempts = var.max_delivery_attempts
  }
}

# Pub/Sub's own service agent moves messages to the dead-letter topic.
data "google_project" "this" {}

locals {
  pubsub_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = { data = google_pubsub_topic.dead_letter.id, ticks = google_pubsub_topic.dead_ticks.id }
  topic    = each.value
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each     = merge({ for k, s in google_pubsub_subscription.process : k => s.id }, { rollup = google_pubsub_subscription.rollup.id })
  subscription = each.value
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

resource "google_cloud_scheduler_job" "tick" {
  name      = "devstats-tick"
  region    = var.region
  schedule  = "*/5 * * * *"
  time_zone = "Etc/UTC"
  pubsub_target {
    topic_name = google_pubsub_topic.tick.id
    data       = base64encode("{}")
  }
}
