//! Which catalog Component a repository or an alerting service belongs to, from its annotations
//! (`github.com/project-slug`, `gitlab.com/project-slug`, `pagerduty.com/service-id`).

use paved_core::catalog::{CatalogRepository, FilterSet, Kind};

pub const GITHUB_SLUG: &str = "github.com/project-slug";
pub const GITLAB_SLUG: &str = "gitlab.com/project-slug";
pub const PAGERDUTY_SERVICE: &str = "pagerduty.com/service-id";

/// The name of the Component annotated `annotation: value` (the first, by name, if several).
pub fn service_for(catalog: &CatalogRepository, annotation: &str, value: &str) -> Option<String> {
    if value.is_empty() || value.contains(',') || value.contains('=') {
        return None;
    }
    let filter = FilterSet::parse(&[format!(
        "kind=component,metadata.annotations.{annotation}={value}"
    )])
    .ok()?;
    let index = catalog.read();
    let mut names: Vec<String> = index
        .filter_ids(&filter)
        .iter()
        .filter_map(|id| index.view(id))
        .filter(|view| view.kind == Kind::Component)
        .map(|view| view.entity_ref.name().to_owned())
        .collect();
    names.sort();
    names.into_iter().next()
}
