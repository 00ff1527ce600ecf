//! Who is calling, and what they may change. Authentication happens at the edge (a verified
//! JWT, or API Gateway's authorizer); these rules are plain functions so that every host
//! applies the same ones.

use crate::catalog::{EntityRef, Kind, RefDefaults, WriteGuard};
use crate::error::Error;

/// An authenticated caller: a user and the groups they belong to, both canonical
/// ([`EntityRef::canonical`]), so that the same person is the same value whether they came
/// with a token (`sub`) or through chat-ops (a catalog User). Built only by [`Identity::new`]
/// and [`Identity::from_claims`], which enforce that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    user: EntityRef,
    groups: Vec<EntityRef>,
}

impl Identity {
    /// A caller who is `user` (a User) and a member of `groups` (Groups). Any other kind is
    /// refused: a subject that names a group is not a member of it.
    pub fn new(user: &EntityRef, groups: &[EntityRef]) -> Result<Self, Error> {
        if user.kind() != "user" {
            return Err(Error::Unauthenticated(format!(
                "the caller must be a user, not the {} {user}",
                user.kind()
            )));
        }
        if let Some(g) = groups.iter().find(|g| g.kind() != "group") {
            return Err(Error::Unauthenticated(format!(
                "a caller's groups must be groups, not the {} {g}",
                g.kind()
            )));
        }
        Ok(Self {
            user: user.canonical(),
            groups: groups.iter().map(EntityRef::canonical).collect(),
        })
    }

    /// Builds an identity from token claims: `sub` is a user (`alice` or `user:ns/alice`),
    /// each of `groups` a group (`team-a` or `group:ns/team-a`). Groups come from the groups
    /// claim only, never from the subject.
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
        Self::new(&user, &groups)
    }

    /// The caller's user, canonical (`user:default/alice`).
    pub fn user(&self) -> &EntityRef {
        &self.user
    }

    /// The caller's groups, canonical.
    pub fn groups(&self) -> &[EntityRef] {
        &self.groups
    }

    /// Whether this caller is the given user or a member of the given group.
    pub fn is(&self, principal: &EntityRef) -> bool {
        let key = principal.key();
        match principal.kind() {
            "user" => self.user.key() == key,
            "group" => self.groups.iter().any(|g| g.key() == key),
            _ => false,
        }
    }

    /// Whether this caller is the user a stored reference names (a request's requester),
    /// however that reference was spelled when it was stored.
    pub fn is_user(&self, stored: &str) -> bool {
        self.user.key() == stored.trim().to_ascii_lowercase()
    }
}

/// The platform-admin group when `PAVED_ADMIN_GROUP` does not name another.
pub const DEFAULT_ADMIN_GROUP: &str = "platform-admins";

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
        // A Template defines what the platform will do, with the platform's own rights (its
        // steps run as paved), so its owner's members may not write one: admins only.
        if kind == Kind::Template {
            return Err(Error::Forbidden(format!(
                "golden paths define what the platform does, so only members of {} may write {entity_ref}",
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
#[derive(Debug)]
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
    fn a_subject_is_a_user_and_never_a_member_of_the_group_it_names() {
        let p = policy();
        // A token whose sub names the admin group is refused outright, not made an admin.
        for sub in ["group:default/platform-admins", "component:default/x"] {
            let err = Identity::from_claims(sub, &[] as &[&str]).expect_err(sub);
            assert_eq!(err.code(), "unauthenticated", "{sub}");
        }
        // Groups come from the groups claim, and only groups.
        assert!(Identity::from_claims("alice", &["user:default/bob"]).is_err());
        let alice = Identity::from_claims("user:default/alice", &["team-a"]).expect("valid");
        assert!(!p.is_admin(&alice));
        // A user is not a group of the same name, nor the other way round.
        assert!(!alice.is(&r("group:default/alice")));
        let team = Identity::from_claims("team-a", &[] as &[&str]).expect("a user named team-a");
        assert!(!team.is(&r("group:default/team-a")));
    }

    #[test]
    fn identities_are_canonical_whatever_the_spelling() {
        let from_token = Identity::from_claims("alice", &["Team-A"]).expect("valid");
        let from_catalog =
            Identity::new(&r("user:default/Alice"), &[r("group:default/team-a")]).expect("valid");
        assert_eq!(from_token, from_catalog);
        assert_eq!(from_catalog.user().to_string(), "user:default/alice");
        assert_eq!(from_token.groups()[0].to_string(), "group:default/team-a");
        assert!(from_catalog.is_user("user:default/ALICE"));
        assert!(!from_catalog.is_user("user:default/alicia"));
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
        // And so is a Template, even one its writer's team owns.
        let tpl = r("template:default/mine");
        let err = p
            .check_catalog_write(&alice, &tpl, Kind::Template, Some(&a), Some(&a))
            .expect_err("templates are for admins");
        assert_eq!(err.code(), "forbidden");
        let admin = Identity::from_claims("root", &["platform-admins"]).expect("valid");
        assert!(
            p.check_catalog_write(&admin, &tpl, Kind::Template, Some(&a), Some(&a))
                .is_ok()
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
