//! Deployment events: the metrics spec's rows and the repository that keeps them over the
//! [`Table`](crate::ports::Table) port, for ingestion to write and the DORA report to read.

mod activity;
mod records;
mod store;

pub use activity::{RECENT_DAYS, ServiceActivity, service_activity};

pub use records::{ChangeRecord, DeploymentRecord, EventRecords, IncidentRecord, ServiceRecord};
pub use store::{Delivery, EventStore};
