//! The use cases, written once over the ports: every entry point (the HTTP functions,
//! chat-ops, the worker, the schedules, `paved up`) calls these, never another entry point.

pub mod reports;
pub mod requests;

pub use reports::{ReportScope, Reports};
pub use requests::{
    DryRun, RequestForm, RequestListing, RequestPage, RequestsPorts, RequestsService, Submission,
};
