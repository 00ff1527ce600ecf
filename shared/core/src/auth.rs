//! Who is calling, and what they may change. Authentication happens at the edge (a verified
//! JWT, or API Gateway's authorizer); these rules are plain functions so that every host
//! applies the same ones.

use crate::catalog::{EntityRef, Kind, RefDefaults, WriteGuard};
use crate::error::Error;

/// An authenticated caller: a user and the groups they belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: EntityRef,
    pub groups: Vec<EntityRef>,
}

impl Identity {
    /// Builds an identity from token claims: `sub` is a user (`alice` or `user:ns/alice`),
    /// each of `groups` a group (`team-a` or `group:ns/team-a`).
    pub fn from_claims<S: AsRef<str>>(sub: &str, groups: &[S]) -> Result<Self, Error> {
        let bad = |what: &str, msg: String| {
            Error::Unauthenticated(format!("the token's {what} is not usable: {msg}"))
        };
        let user = EntityRef::parse(
            sub,
            RefDefaults {
                kind: Some("user"),
                namespace: "default",
            },
        )
        .map_err(|m| bad("sub", m))?;
        let groups = groups
            .iter()
            .map(|g| {
                EntityRef::parse(
                    g.as_ref(),
                    RefDefaults {
                        kind: Some("group"),
                        namespace: "default",
                    },
                )
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| bad("groups", m))?;
        Ok(Self { user, groups })
    }

    /// Whether this caller is the given user or a member of the given group.
    pub fn is(&self, principal: &EntityRef) -> bool {
        let key = principal.key();
        self.user.key() == key || self.groups.iter().any(|g| g.key() == key)
    }
}

/// Who may do what, beyond ownership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPolicy {
    /// Members of this group may change any entity.
    pub admin_group: EntityRef,
}

impl AccessPolicy {
    pub fn new(admin_group: &str) -> Result<Self, String> {
        let admin_group = EntityRef::parse(
            admin_group,
            RefDefaults {
                kind: Some("group"),
                namespace: "default",
            },
        )?;
        Ok(Self { admin_group })
    }

    pub fn is_admin(&self, who: &Identity) -> bool {
        who.is(&self.admin_group)
    }

    /// The catalog write rule: platform admins may change anything. Everyone else may create,
    /// change or delete an entity only when they belong to its owner, both the owner it has
    /// and the owner it is given (so nobody can take over, or give away, what they do not
    /// own). Groups and users have no owner and are changed by admins only.
    pub fn check_catalog_write(
        &self,
        who: &Identity,
        entity_ref: &EntityRef,
        kind: Kind,
        current_owner: Option<&EntityRef>,
        new_owner: Option<&EntityRef>,
    ) -> Result<(), Error> {
        if self.is_admin(who) {
            return Ok(());
        }
        if !kind.has_owner() {
            return Err(Error::Forbidden(format!(
                "only members of {} may change {kind} entities such as {entity_ref}",
                self.admin_group
            )));
        }
        if current_owner.is_none() && new_owner.is_none() {
            return Err(Error::Forbidden(format!(
                "{entity_ref} has no owner, so only members of {} may change it",
                self.admin_group
            )));
        }
        for owner in [current_owner, new_owner].into_iter().flatten() {
            if !who.is(owner) {
                return Err(Error::Forbidden(format!(
                    "{} may not change {entity_ref}: it is owned by {owner}, and only its members or {} may change it",
                    who.user, self.admin_group
                )));
            }
        }
        Ok(())
    }

    /// Binds the policy to a caller, for the repository's write checks.
    pub fn writer<'a>(&'a self, who: &'a Identity) -> CatalogWriter<'a> {
        CatalogWriter { policy: self, who }
    }
}

/// A caller's write permission on the catalog.
pub struct CatalogWriter<'a> {
    policy: &'a AccessPolicy,
    who: &'a Identity,
}

impl WriteGuard for CatalogWriter<'_> {
    fn check(
        &self,
        entity_ref: &EntityRef,
        kind: Kind,
        current_owner: Option<&EntityRef>,
        new_owner: Option<&EntityRef>,
    ) -> Result<(), Error> {
        self.policy
            .check_catalog_write(self.who, entity_ref, kind, current_owner, new_owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> EntityRef {
        EntityRef::parse(
            s,
            RefDefaults {
                kind: None,
                namespace: "default",
            },
        )
        .expect("valid")
    }

    fn policy() -> AccessPolicy {
        AccessPolicy::new("platform-admins").expect("valid")
    }

    #[test]
    fn claims_become_refs() {
        let who = Identity::from_claims("alice", &["team-a", "group:ops/sre"]).expect("valid");
        assert_eq!(who.user.to_string(), "user:default/alice");
        assert!(who.is(&r("group:default/Team-A")));
        assert!(who.is(&r("group:ops/sre")));
        assert!(!who.is(&r("group:default/sre")));
        assert_eq!(
            Identity::from_claims("", &["x"]).expect_err("bad").code(),
            "unauthenticated"
        );
        assert!(Identity::from_claims("bob", &["bad group!"]).is_err());
    }

    #[test]
    fn owners_may_write_their_own_entities_only() {
        let alice = Identity::from_claims("alice", &["team-a"]).expect("valid");
        let svc = r("component:default/svc");
        let (a, b) = (r("group:default/team-a"), r("group:default/team-b"));
        let p = policy();
        assert!(
            p.check_catalog_write(&alice, &svc, Kind::Component, None, Some(&a))
                .is_ok()
        );
        assert!(
            p.check_catalog_write(&alice, &svc, Kind::Component, Some(&a), Some(&a))
                .is_ok()
        );
        // Neither creating for, taking over from, nor giving away to another team.
        for (cur, new) in [(None, Some(&b)), (Some(&b), Some(&a)), (Some(&a), Some(&b))] {
            let err = p
                .check_catalog_write(&alice, &svc, Kind::Component, cur, new)
                .expect_err("forbidden");
            assert_eq!(err.code(), "forbidden");
        }
        // Deleting needs the current owner.
        assert!(
            p.check_catalog_write(&alice, &svc, Kind::Component, Some(&b), None)
                .is_err()
        );
        // An entity with no owner (a template may omit it) is for admins.
        assert!(
            p.check_catalog_write(&alice, &svc, Kind::Template, None, None)
                .is_err()
        );
        // A user may own an entity directly.
        let mine = r("user:default/alice");
        assert!(
            p.check_catalog_write(&alice, &svc, Kind::Component, None, Some(&mine))
                .is_ok()
        );
    }

    #[test]
    fn groups_and_users_are_admin_only_and_admins_may_do_anything() {
        let alice = Identity::from_claims("alice", &["team-a"]).expect("valid");
        let admin = Identity::from_claims("root", &["platform-admins"]).expect("valid");
        let team = r("group:default/team-a");
        let p = policy();
        assert!(
            p.check_catalog_write(&alice, &team, Kind::Group, None, None)
                .is_err()
        );
        assert!(
            p.check_catalog_write(&admin, &team, Kind::Group, None, None)
                .is_ok()
        );
        let b = r("group:default/team-b");
        assert!(
            p.check_catalog_write(
                &admin,
                &r("component:default/x"),
                Kind::Component,
                Some(&b),
                Some(&b)
            )
            .is_ok()
        );
    }
}
