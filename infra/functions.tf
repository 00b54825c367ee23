# The three functions deploy one build of this repository: Cloud Functions runs `npm run gcp-build`
# (tsc to dist/, then esbuild to dist/bundle/, build/bundle.js) and starts each function's own
# bundle (FUNCTION_SOURCE, read by functions-framework) with the target below; package.json's main,
# the bundle of all targets, stands in where FUNCTION_SOURCE is not set.
resource "google_storage_bucket" "source" {
  name                        = "${var.project_id}-devstats-source"
  location                    = var.region
  uniform_bucket_level_access = true
  force_destroy               = true
}

data "archive_file" "source" {
  type        = "zip"
  source_dir  = var.source_dir
  output_path = "${path.module}/.build/devstats-source.zip"
  # Only the code is uploaded: never a local .env or .npmrc (tokens), tests, benchmarks or data.
  excludes = [
    "node_modules", "dist", ".git", ".devstats", "infra", "test", "bench", ".ci", "scripts",
    ".env", ".env.*", "**/.env", ".npmrc", "**/.npmrc", "*.log", "*.sqlite", "*.md",
  ]
}

resource "google_storage_bucket_object" "source" {
  name   = "devstats-${data.archive_file.source.output_md5}.zip"
  bucket = google_storage_bucket.source.name
  source = data.archive_file.source.output_path
}

locals {
  common_env = merge(
    {
      GOOGLE_CLOUD_PROJECT = var.project_id
      DD_SITE              = var.datadog_site
    },
    var.devstats_config_file == "" ? {} : { DEVSTATS_CONFIG = var.devstats_config_file },
  )
  build = {
    runtime = "nodejs22"
    bucket  = google_storage_bucket.source.name
    object  = google_storage_bucket_object.source.name
  }
}

resource "google_cloudfunctions2_function" "ingest" {
  name     = "devstats-ingest"
  location = var.region
  build_config {
    runtime     = local.build.runtime
    entry_point = "ingest"
    source {
      storage_source {
        bucket = local.build.bucket
        object = local.build.object
      }
    }
  }
  service_config {
    service_account_email = google_service_account.ingest.email
    available_memory      = "512Mi"
    timeout_seconds       = 30
    max_instance_count    = 20
    # A webhook must be answered fast: keep one instance warm.
    min_instance_count    = 1
    # Webhook secrets are files (Secret Manager volumes of the latest version), read again every
    # DEVSTATS_SECRET_TTL_MS: a rotation reaches the warm instance without a restart.
    environment_variables = merge(
      local.common_env,
      { FUNCTION_SOURCE = "dist/bundle/ingest.js" },
      { DEVSTATS_RAW_TOPIC = google_pubsub_topic.raw.name },
      { for source in local.webhook_sources : "${local.webhook_secret_env[source]}_FILE" => "/etc/secrets/${source}/value" },
    )
    dynamic "secret_volumes" {
      for_each = local.webhook_sources
      content {
        mount_path = "/etc/secrets/${secret_volumes.value}"
        project_id = var.project_id
        secret     = google_secret_manager_secret.webhook[secret_volumes.value].secret_id
        versions {
          version = "latest"
          path    = "value"
        }
      }
    }
  }
  depends_on = [google_secret_manager_secret_version.webhook, google_secret_manager_secret_iam_member.ingest_webhooks]
}

resource "google_cloudfunctions2_function" "process" {
  name     = "devstats-process"
  location = var.region
  build_config {
    runtime     = local.build.runtime
    entry_point = "process"
    source {
      storage_source {
        bucket = local.build.bucket
        object = local.build.object
      }
    }
  }
  service_config {
    service_account_email            = google_service_account.process.email
    available_memory                 = "512Mi"
    timeout_seconds                  = 120
    max_instance_count               = 10
    max_instance_request_concurrency = 8
    available_cpu                    = "1"
    # Only Pub/Sub's push subscriptions call it: no traffic from outside the project.
    ingress_settings = "ALLOW_INTERNAL_ONLY"
    environment_variables            = merge(local.common_env, { FUNCTION_SOURCE = "dist/bundle/process.js" })
    secret_environment_variables {
      key        = "DD_API_KEY"
      project_id = var.project_id
      secret     = google_secret_manager_secret.datadog_api_key.secret_id
      version    = "latest"
    }
  }
  depends_on = [google_secret_manager_secret_version.datadog_api_key, google_secret_manager_secret_iam_member.datadog_key]
}

resource "google_cloudfunctions2_function" "rollup" {
  name     = "devstats-rollup"
  location = var.region
  build_config {
    runtime     = local.build.runtime
    entry_point = "rollup"
    source {
      storage_source {
        bucket = local.build.bucket
        object = local.build.object
      }
    }
  }
  service_config {
    service_account_email = google_service_account.rollup.email
    ingress_settings      = "ALLOW_INTERNAL_ONLY"
    available_memory      = "1Gi"
    timeout_seconds       = 300
    max_instance_count    = 1
    environment_variables = merge(local.common_env, { FUNCTION_SOURCE = "dist/bundle/rollup.js" })
    secret_environment_variables {
      key        = "DD_API_KEY"
      project_id = var.project_id
      secret     = google_secret_manager_secret.datadog_api_key.secret_id
      version    = "latest"
    }
  }
  depends_on = [google_secret_manager_secret_version.datadog_api_key, google_secret_manager_secret_iam_member.datadog_key]
}
