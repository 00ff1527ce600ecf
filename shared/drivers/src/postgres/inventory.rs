//! The leak scan's half of the driver: what on the server is paved's (databases and roles
//! whose comment is paved's marker, and pending databases, `pavedtmp_<token>`, a crash may
//! have left unmarked), and the removal of one such thing for an admin who chose to delete a
//! leak. Every lookup is parameterised; a name goes into SQL only after it is checked to be one
//! paved makes (`[a-z0-9_]`, at most 63 bytes) and quoted.

use paved_core::observation::{Found, InventoryPage};
use paved_core::provisioning::{DriverError, ResourceSpec};

use super::{PostgresDriver, classify, names_of, quote};
use crate::ownership;

/// One page: databases first, then roles, in name order; the position is `<kind>/<name>`.
const INVENTORY_SQL: &str = "\
SELECT kind, name, note FROM ( \
  SELECT 'database'::text AS kind, datname::text AS name, \
         shobj_description(oid, 'pg_database') AS note FROM pg_database \
  UNION ALL \
  SELECT 'role'::text, rolname::text, shobj_description(oid, 'pg_authid') FROM pg_roles \
) found \
WHERE (note LIKE 'paved:request-id=%' OR (kind = 'database' AND name LIKE 'pavedtmp\\_%')) \
  AND kind || '/' || name > $1 \
ORDER BY kind || '/' || name \
LIMIT $2";

/// Whether `name` is one paved makes, so it may be quoted into SQL.
fn paved_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl PostgresDriver {
    /// At most `limit` things, one query.
    pub(super) async fn inventory_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<InventoryPage, DriverError> {
        let client = self.connect(None).await?;
        let limit = i64::try_from(limit.clamp(1, 1000)).unwrap_or(1000);
        let after = after.unwrap_or("");
        let rows = self
            .bounded(
                "the inventory",
                client.query(INVENTORY_SQL, &[&after, &limit]),
            )
            .await?
            .map_err(classify)?;
        let mut page = InventoryPage {
            calls: 1,
            ..InventoryPage::default()
        };
        for row in &rows {
            let kind: String = row.get(0);
            let name: String = row.get(1);
            let note: Option<String> = row.get(2);
            page.found.push(Found {
                kind,
                name,
                request_id: note
                    .as_deref()
                    .and_then(ownership::parse)
                    .map(str::to_owned),
            });
        }
        if rows.len() as i64 == limit {
            page.next = page.found.last().map(|f| format!("{}/{}", f.kind, f.name));
        }
        Ok(page)
    }

    /// Drops one database or role, only while its marker names `spec`'s request. A role goes
    /// with what it owns in its request's own database, and with its stored password.
    pub(super) async fn remove(
        &self,
        spec: &ResourceSpec,
        found: &Found,
    ) -> Result<(), DriverError> {
        if !paved_identifier(&found.name) {
            return Err(ownership::not_owned(format!(
                "{} is not a name paved makes; it is left alone",
                found.name
            )));
        }
        let what = format!("the {} {}", found.kind, found.name);
        let client = self.connect(None).await?;
        let marker = match found.kind.as_str() {
            "database" => self.database_marker(&client, &found.name).await?,
            "role" => self.role_marker(&client, &found.name).await?,
            other => {
                return Err(DriverError::NonRetryable {
                    code: "NonRetryable.UnknownKind",
                    message: format!("PostgreSQL has no {other} paved makes"),
                });
            }
        };
        let holder = ownership::Holder::of(marker, &spec.request_id);
        if !holder.for_removal(&what)? {
            return Ok(());
        }
        if found.kind == "database" {
            return self
                .execute(
                    &client,
                    &format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        quote(&found.name)
                    ),
                )
                .await;
        }
        let n = names_of(spec);
        if self.database_marker(&client, &n.database).await? == Some(Some(spec.request_id.clone()))
        {
            let db = self.connect(Some(&n.database)).await?;
            self.execute(&db, &format!("DROP OWNED BY {}", quote(&found.name)))
                .await?;
        }
        let drop = format!("DROP ROLE IF EXISTS {}", quote(&found.name));
        match self.bounded(&drop, client.batch_execute(&drop)).await? {
            Ok(()) => {}
            // Privileges or objects in a database that is not its request's: a person decides.
            Err(e) if e.code().is_some_and(|c| c.code() == "2BP01") => {
                return Err(DriverError::NonRetryable {
                    code: "NonRetryable.PostgresRefused",
                    message: format!(
                        "{what} still has privileges or objects elsewhere: {}",
                        e.as_db_error()
                            .map_or_else(|| e.to_string(), |d| d.message().to_owned())
                    ),
                });
            }
            Err(e) => return Err(classify(e)),
        }
        if found.name == n.role {
            self.secrets
                .delete(&n.secret)
                .await
                .map_err(super::secret_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_paved_makes_reach_sql() {
        assert!(paved_identifier("paved_dev_orders"));
        assert!(paved_identifier("pavedtmp_0123abcd"));
        assert!(!paved_identifier("Paved_dev"));
        assert!(!paved_identifier("x\"; DROP ROLE postgres; --"));
        assert!(!paved_identifier(""));
        assert!(!paved_identifier(&"a".repeat(64)));
    }
}
