use std::fmt;

/// The entity kinds paved's catalog accepts, spelled as Backstage spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Component,
    Api,
    Resource,
    System,
    Domain,
    Group,
    User,
    /// A golden path: Backstage's scaffolder template (`scaffolder.backstage.io/v1beta3`).
    Template,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Component,
        Kind::Api,
        Kind::Resource,
        Kind::System,
        Kind::Domain,
        Kind::Group,
        Kind::User,
        Kind::Template,
    ];

    /// The kind as written in an entity's `kind` field (case-sensitive, as in Backstage).
    pub fn parse(value: &str) -> Option<Kind> {
        Self::ALL.into_iter().find(|k| k.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Component => "Component",
            Kind::Api => "API",
            Kind::Resource => "Resource",
            Kind::System => "System",
            Kind::Domain => "Domain",
            Kind::Group => "Group",
            Kind::User => "User",
            Kind::Template => "Template",
        }
    }

    /// The apiVersions an entity of this kind may declare.
    pub fn api_versions(self) -> &'static [&'static str] {
        match self {
            Kind::Template => &["scaffolder.backstage.io/v1beta3"],
            _ => &["backstage.io/v1alpha1", "backstage.io/v1beta1"],
        }
    }

    /// Kinds whose `spec.owner` names who may change them.
    pub fn has_owner(self) -> bool {
        !matches!(self, Kind::Group | Kind::User)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
