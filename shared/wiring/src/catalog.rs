//! The catalog's read model, loaded the one way every entry point loads it: its snapshot and
//! change log from the platform table, with the staleness bound from the environment.

use std::sync::Arc;
use std::time::Duration;

use paved_core::catalog::{CatalogOptions, CatalogRepository};
use paved_core::ports::Table;

/// The largest staleness bound accepted: past this, a removed membership would keep
/// authorizing for too long to call it bounded.
const MAX_STALENESS_LIMIT_MS: u64 = 60_000;

/// [`CatalogOptions`] from `PAVED_CATALOG_MAX_STALENESS_MS` (default 1000, at most 60000):
/// how old a read model may be before a reader catches it up with the change log.
pub fn catalog_options_from_lookup(
    get: impl Fn(&str) -> Option<String>,
) -> Result<CatalogOptions, String> {
    let mut options = CatalogOptions::default();
    if let Some(text) = get("PAVED_CATALOG_MAX_STALENESS_MS").filter(|t| !t.trim().is_empty()) {
        let ms: u64 = text.trim().parse().map_err(|_| {
            format!("PAVED_CATALOG_MAX_STALENESS_MS is '{text}'; give milliseconds, 0 to {MAX_STALENESS_LIMIT_MS}")
        })?;
        if ms > MAX_STALENESS_LIMIT_MS {
            return Err(format!(
                "PAVED_CATALOG_MAX_STALENESS_MS is {ms}; at most {MAX_STALENESS_LIMIT_MS} (a minute)"
            ));
        }
        options.max_staleness = Duration::from_millis(ms);
    }
    Ok(options)
}

/// Loads the catalog from `table` with the options of the environment.
pub async fn load_catalog(table: &Arc<dyn Table>) -> Result<Arc<CatalogRepository>, String> {
    let options = catalog_options_from_lookup(|k| std::env::var(k).ok())?;
    CatalogRepository::load_with(Arc::clone(table), options)
        .await
        .map(Arc::new)
        .map_err(|e| format!("the catalog could not be loaded: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_staleness_bound_defaults_to_a_second_and_refuses_nonsense() {
        let none = catalog_options_from_lookup(|_| None).expect("default");
        assert_eq!(none.max_staleness, Duration::from_secs(1));
        let set = catalog_options_from_lookup(|_| Some("250".into())).expect("set");
        assert_eq!(set.max_staleness, Duration::from_millis(250));
        assert!(catalog_options_from_lookup(|_| Some("soon".into())).is_err());
        assert!(catalog_options_from_lookup(|_| Some("600000".into())).is_err());
    }
}
