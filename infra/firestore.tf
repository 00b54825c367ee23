resource "google_firestore_database" "default" {
  name        = "(default)"
  location_id = var.firestore_location
  type        = "FIRESTORE_NATIVE"
}

# The composite indexes the store's queries need (shared/store/firestore.ts).
locals {
  firestore_indexes = {
    deploys_previous_success = { collection = "deploys", fields = [["service", "ASCENDING"], ["environment", "ASCENDING"], ["status", "ASCENDING"], ["finishedAt", "DESCENDING"]] }
    deploys_of_service       = { collection = "deploys", fields = [["service", "ASCENDING"], ["environment", "ASCENDING"], ["finishedAt", "ASCENDING"]] }
    deploys_shipping         = { collection = "deploys", fields = [["service", "ASCENDING"], ["_ships", "ASCENDING"], ["_shipOrder", "ASCENDING"]] }
    deploys_shipping_desc    = { collection = "deploys", fields = [["service", "ASCENDING"], ["_ships", "ASCENDING"], ["_shipOrder", "DESCENDING"]] }
    deploys_next_success     = { collection = "deploys", fields = [["service", "ASCENDING"], ["environment", "ASCENDING"], ["status", "ASCENDING"], ["finishedAt", "ASCENDING"]] }
    deploys_later_first      = { collection = "deploys", fields = [["service", "ASCENDING"], ["_ships", "ASCENDING"], ["_resolvedFirst", "ASCENDING"], ["_shipOrder", "ASCENDING"]] }
    deploys_shipping_at      = { collection = "deploys", fields = [["repository", "ASCENDING"], ["commitSha", "ASCENDING"], ["_ships", "ASCENDING"]] }
    deploys_watching         = { collection = "deploys", fields = [["repository", "ASCENDING"], ["_watching", "CONTAINS"]] }
    deploys_unexported       = { collection = "deploys", fields = [["_exported", "ASCENDING"], ["finishedAt", "ASCENDING"]] }
    pushes_to_sha            = { collection = "pushes", fields = [["repository", "ASCENDING"], ["after", "ASCENDING"]] }
    pushes_since             = { collection = "pushes", fields = [["repository", "ASCENDING"], ["pushedAt", "ASCENDING"]] }
    commits_before           = { collection = "commits", fields = [["repository", "ASCENDING"], ["timestamp", "DESCENDING"]] }
    deploys_shipping_since   = { collection = "deploys", fields = [["repository", "ASCENDING"], ["_ships", "ASCENDING"], ["finishedAt", "ASCENDING"]] }
    pull_requests_by_merge   = { collection = "pull_requests", fields = [["repository", "ASCENDING"], ["mergeCommitSha", "ASCENDING"]] }
    shipped_by_deploy        = { collection = "shipped", fields = [["deployId", "ASCENDING"], ["_held", "ASCENDING"], ["_counted", "ASCENDING"]] }
    shipped_by_time          = { collection = "shipped", fields = [["_held", "ASCENDING"], ["_counted", "ASCENDING"], ["deployedAt", "ASCENDING"]] }
    items_unexported         = { collection = "items", fields = [["_exported", "ASCENDING"], ["at", "ASCENDING"]] }
    shipped_unexported       = { collection = "shipped", fields = [["_held", "ASCENDING"], ["_counted", "ASCENDING"], ["_exported", "ASCENDING"], ["deployedAt", "ASCENDING"]] }
  }
}

resource "google_firestore_index" "store" {
  for_each   = local.firestore_indexes
  database   = google_firestore_database.default.name
  collection = each.value.collection
  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = fields.value[0]
      order        = fields.value[1] == "CONTAINS" ? null : fields.value[1]
      array_config = fields.value[1] == "CONTAINS" ? "CONTAINS" : null
    }
  }
}

# A deploy's `_holds`, the shipped documents its last record took, is read by id and never
# queried: no single-field index (it can list thousands of ids for a first deploy's history).
resource "google_firestore_field" "deploy_holds" {
  database   = google_firestore_database.default.name
  collection = "deploys"
  field      = "_holds"
  index_config {}
}
