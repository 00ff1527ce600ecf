//! Deterministic external names: the same request always maps to the same resource name, so a
//! retried step finds what an earlier attempt made instead of making a second one.

use sha2::{Digest, Sha256};

/// `paved_<environment>_<name>` as a PostgreSQL-safe identifier: lower-case ASCII letters,
/// digits and `_`, at most `max` bytes (a long name keeps a hash suffix so it stays unique).
pub fn identifier(environment: &str, name: &str, max: usize) -> String {
    let raw = format!("paved_{environment}_{name}");
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if clean.len() <= max {
        return clean;
    }
    let hash = hex::encode(&Sha256::digest(raw.as_bytes())[..4]);
    format!("{}_{hash}", &clean[..max - hash.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_deterministic_safe_and_bounded() {
        assert_eq!(
            identifier("staging", "orders-db", 63),
            "paved_staging_orders_db"
        );
        assert_eq!(
            identifier("staging", "orders-db", 63),
            identifier("staging", "orders-db", 63)
        );
        let long = identifier("production", &"x".repeat(60), 63);
        assert_eq!(long.len(), 63);
        assert_ne!(long, identifier("production", &"x".repeat(59), 63));
        assert!(
            identifier("dev", "a\"; DROP TABLE x; --", 63)
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        );
    }
}
