variable "project_id" {
  description = "Google Cloud project that runs DevStats."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a Google Cloud project id: 6 to 30 lower-case letters, digits or hyphens."
  }
}

variable "region" {
  description = "Region of the functions, the scheduler job and the source bucket."
  type        = string
  default     = "europe-west1"
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must be a Google Cloud region such as europe-west1."
  }
}

variable "firestore_location" {
  description = "Location of the Firestore database (a region or a multi-region such as eur3)."
  type        = string
  default     = "eur3"
}

variable "source_dir" {
  description = "The DevStats repository to deploy (its package.json builds dist/ on Cloud Functions through gcp-build)."
  type        = string
  default     = ".."
}

variable "devstats_config_file" {
  description = "Path, inside the repository, of the DevStats configuration file (teams, maps) the functions read; empty for the defaults."
  type        = string
  default     = ""
}

variable "datadog_site" {
  description = "Datadog site: datadoghq.com, datadoghq.eu, us3.datadoghq.com, us5.datadoghq.com, ap1.datadoghq.com or ddog-gov.com."
  type        = string
  default     = "datadoghq.com"
  validation {
    condition     = contains(["datadoghq.com", "datadoghq.eu", "us3.datadoghq.com", "us5.datadoghq.com", "ap1.datadoghq.com", "ddog-gov.com"], var.datadog_site)
    error_message = "datadog_site must be one of Datadog's sites."
  }
}

variable "datadog_api_key" {
  description = "Datadog API key: stored in Secret Manager for the functions, and used by the Datadog provider."
  type        = string
  sensitive   = true
}

variable "datadog_app_key" {
  description = "Datadog application key, for the Datadog provider (dashboard, monitors)."
  type        = string
  sensitive   = true
}

variable "webhook_secrets" {
  description = "The webhook secrets, stored in Secret Manager: github, spinnaker, terraform, circleci, deployments, pagerduty, opsgenie, datadog. Each may hold two comma-separated values during a rotation. A source left empty is refused by ingest."
  type = object({
    github      = optional(string, "")
    spinnaker   = optional(string, "")
    terraform   = optional(string, "")
    circleci    = optional(string, "")
    deployments = optional(string, "")
    pagerduty   = optional(string, "")
    opsgenie    = optional(string, "")
    datadog     = optional(string, "")
  })
  sensitive = true
}

variable "max_delivery_attempts" {
  description = "Deliveries of one Pub/Sub message to process or rollup before it goes to the dead-letter topic."
  type        = number
  default     = 10
  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "Pub/Sub takes between 5 and 100 delivery attempts."
  }
}

variable "manage_cloud_builds_topic" {
  description = "Create the cloud-builds topic (Cloud Build creates it itself once its API is enabled: leave false then)."
  type        = bool
  default     = false
}

variable "pipeline_lag_threshold_seconds" {
  description = "Monitor threshold: p95 of devstats.pipeline.lag (receipt to export) above this alerts."
  type        = number
  default     = 900
  validation {
    condition     = var.pipeline_lag_threshold_seconds > 0
    error_message = "The threshold must be positive."
  }
}

variable "monitor_notify" {
  description = "Who the monitors notify, as Datadog @-handles (e.g. \"@slack-platform @pagerduty-devstats\")."
  type        = string
  default     = ""
}

variable "source_silence_hours" {
  description = "Hours without a processed delivery from a source before the \"gone silent\" monitor alerts (a quiet weekend should not)."
  type        = number
  default     = 72
}
