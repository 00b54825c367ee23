# One service account per function, each with only what it does.
resource "google_service_account" "ingest" {
  account_id   = "devstats-ingest"
  display_name = "DevStats ingest: publishes to devstats-raw"
}

resource "google_service_account" "process" {
  account_id   = "devstats-process"
  display_name = "DevStats process: writes Firestore, exports to Datadog"
}

resource "google_service_account" "rollup" {
  account_id   = "devstats-rollup"
  display_name = "DevStats rollup: reads Firestore, exports to Datadog"
}

# The identity Pub/Sub push uses to invoke process and rollup.
resource "google_service_account" "pusher" {
  account_id   = "devstats-pusher"
  display_name = "DevStats Pub/Sub push to process and rollup"
}

resource "google_pubsub_topic_iam_member" "ingest_publishes_raw" {
  topic  = google_pubsub_topic.raw.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.ingest.email}"
}

resource "google_project_iam_member" "firestore_users" {
  for_each = { process = google_service_account.process.email, rollup = google_service_account.rollup.email }
  project  = var.project_id
  role     = "roles/datastore.user"
  member   = "serviceAccount:${each.value}"
}

resource "google_cloud_run_service_iam_member" "pusher_invokes" {
  for_each = {
    process = google_cloudfunctions2_function.process.service_config[0].service
    rollup  = google_cloudfunctions2_function.rollup.service_config[0].service
  }
  location = var.region
  service  = each.value
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pusher.email}"
}

# Webhooks come from GitHub, Spinnaker, HCP Terraform and CI: ingest is public, and every request
# is authenticated by its signature or token.
resource "google_cloud_run_service_iam_member" "ingest_public" {
  location = var.region
  service  = google_cloudfunctions2_function.ingest.service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}
