//! Relations between entities, computed from spec fields and kept in both directions, as
//! Backstage's `BuiltinKindsEntityProcessor` emits them.

use serde::Serialize;

use super::names::EntityRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum RelationType {
    OwnedBy,
    OwnerOf,
    DependsOn,
    DependencyOf,
    ProvidesApi,
    ApiProvidedBy,
    ConsumesApi,
    ApiConsumedBy,
    PartOf,
    HasPart,
    MemberOf,
    HasMember,
    ParentOf,
    ChildOf,
}

impl RelationType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OwnedBy => "ownedBy",
            Self::OwnerOf => "ownerOf",
            Self::DependsOn => "dependsOn",
            Self::DependencyOf => "dependencyOf",
            Self::ProvidesApi => "providesApi",
            Self::ApiProvidedBy => "apiProvidedBy",
            Self::ConsumesApi => "consumesApi",
            Self::ApiConsumedBy => "apiConsumedBy",
            Self::PartOf => "partOf",
            Self::HasPart => "hasPart",
            Self::MemberOf => "memberOf",
            Self::HasMember => "hasMember",
            Self::ParentOf => "parentOf",
            Self::ChildOf => "childOf",
        }
    }

    /// The same relation seen from the other end.
    pub fn inverse(self) -> Self {
        match self {
            Self::OwnedBy => Self::OwnerOf,
            Self::OwnerOf => Self::OwnedBy,
            Self::DependsOn => Self::DependencyOf,
            Self::DependencyOf => Self::DependsOn,
            Self::ProvidesApi => Self::ApiProvidedBy,
            Self::ApiProvidedBy => Self::ProvidesApi,
            Self::ConsumesApi => Self::ApiConsumedBy,
            Self::ApiConsumedBy => Self::ConsumesApi,
            Self::PartOf => Self::HasPart,
            Self::HasPart => Self::PartOf,
            Self::MemberOf => Self::HasMember,
            Self::HasMember => Self::MemberOf,
            Self::ParentOf => Self::ChildOf,
            Self::ChildOf => Self::ParentOf,
        }
    }
}

/// A relation from the entity that holds it to `target`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Relation {
    pub rel_type: RelationType,
    pub target: EntityRef,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_relation_type_inverts_back() {
        use RelationType::*;
        for t in [
            OwnedBy,
            OwnerOf,
            DependsOn,
            DependencyOf,
            ProvidesApi,
            ApiProvidedBy,
            ConsumesApi,
            ApiConsumedBy,
            PartOf,
            HasPart,
            MemberOf,
            HasMember,
            ParentOf,
            ChildOf,
        ] {
            assert_eq!(t.inverse().inverse(), t);
            assert_ne!(t.inverse(), t);
        }
    }
}
