//! Typed configuration from the environment, read once at start-up.

use std::path::PathBuf;

/// Where state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// One SQLite file in this directory.
    Embedded { data_dir: PathBuf },
    /// DynamoDB, SQS and Step Functions.
    Aws,
}

#[derive(Debug, Clone)]
pub struct CatalogConfig {
    pub backend: Backend,
    /// Members of this group may change any entity (`PAVED_ADMIN_GROUP`).
    pub admin_group: String,
    pub limits: crate::Limits,
}

impl CatalogConfig {
    /// Reads `PAVED_BACKEND` (`embedded`, the default, or `aws`), `PAVED_DATA_DIR` (default
    /// `./.paved`), `PAVED_ADMIN_GROUP` (default `platform-admins`) and
    /// `PAVED_MAX_IMPORT_BYTES`.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let backend = match get("PAVED_BACKEND").as_deref().unwrap_or("embedded") {
            "embedded" => Backend::Embedded {
                data_dir: get("PAVED_DATA_DIR")
                    .unwrap_or_else(|| ".paved".into())
                    .into(),
            },
            "aws" => Backend::Aws,
            other => return Err(format!("PAVED_BACKEND is '{other}'; use embedded or aws")),
        };
        let mut limits = crate::Limits::default();
        if let Some(raw) = get("PAVED_MAX_IMPORT_BYTES") {
            limits.import_body = raw.parse().map_err(|_| {
                format!("PAVED_MAX_IMPORT_BYTES must be a number of bytes, not '{raw}'")
            })?;
        }
        Ok(Self {
            backend,
            admin_group: get("PAVED_ADMIN_GROUP").unwrap_or_else(|| "platform-admins".into()),
            limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_errors() {
        let c = CatalogConfig::from_lookup(|_| None).expect("defaults");
        assert_eq!(
            c.backend,
            Backend::Embedded {
                data_dir: ".paved".into()
            }
        );
        assert_eq!(c.admin_group, "platform-admins");
        assert!(
            CatalogConfig::from_lookup(|k| (k == "PAVED_BACKEND").then(|| "mongo".into())).is_err()
        );
        assert!(
            CatalogConfig::from_lookup(|k| (k == "PAVED_MAX_IMPORT_BYTES").then(|| "lots".into()))
                .is_err()
        );
    }
}
