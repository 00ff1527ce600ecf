//! Typed configuration from the environment, read once at start-up.

use paved_wiring::BackendConfig;

#[derive(Debug, Clone)]
pub struct CatalogConfig {
    pub backend: BackendConfig,
    /// Members of this group may change any entity (`PAVED_ADMIN_GROUP`).
    pub admin_group: String,
    pub limits: crate::Limits,
}

impl CatalogConfig {
    /// Reads the backend ([`BackendConfig::from_env`]), `PAVED_ADMIN_GROUP` (default
    /// `platform-admins`) and `PAVED_MAX_IMPORT_BYTES`.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let backend = BackendConfig::from_lookup(&get)?;
        let mut limits = crate::Limits::default();
        if let Some(raw) = get("PAVED_MAX_IMPORT_BYTES") {
            limits.import_body = raw.parse().map_err(|_| {
                format!("PAVED_MAX_IMPORT_BYTES must be a number of bytes, not '{raw}'")
            })?;
        }
        Ok(Self {
            backend,
            admin_group: get("PAVED_ADMIN_GROUP")
                .unwrap_or_else(|| paved_core::auth::DEFAULT_ADMIN_GROUP.into()),
            limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = CatalogConfig::from_lookup(|k| (k == "PAVED_BACKEND").then(|| "aws".into()))
            .expect("aws");
        assert!(c.backend.is_aws());
        assert_eq!(c.admin_group, "platform-admins");
        // Unset means embedded, which a Lambda build (no `embedded` feature) refuses clearly.
        let default = CatalogConfig::from_lookup(|_| None);
        if paved_wiring::HAS_EMBEDDED {
            assert!(!default.expect("embedded").backend.is_aws());
        } else {
            let err = default.err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("no embedded backend"), "{err}");
        }
        assert!(
            CatalogConfig::from_lookup(|k| (k == "PAVED_BACKEND").then(|| "mongo".into())).is_err()
        );
        assert!(
            CatalogConfig::from_lookup(|k| (k == "PAVED_MAX_IMPORT_BYTES").then(|| "lots".into()))
                .is_err()
        );
    }
}
