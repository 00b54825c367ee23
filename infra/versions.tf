terraform {
  required_version = ">= 1.6"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
    datadog = {
      source  = "DataDog/datadog"
      version = ">= 3.40, < 4.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "datadog" {
  api_url = "https://api.${var.datadog_site}/"
  api_key = var.datadog_api_key
  app_key = var.datadog_app_key
}
