//! Delivery records (changes, deployments, incidents): the metrics spec's rows and the
//! repository that keeps them over the [`Table`](crate::ports::Table) port, for ingestion to
//! write and the DORA report to read. (Not a request's event log, which is
//! [`RequestEvent`](crate::requests::RequestEvent), nor Slack's Events API.)

mod activity;
mod records;
mod store;

pub use activity::{RECENT_DAYS, ServiceActivity, service_activity};

pub use records::{ChangeRecord, DeploymentRecord, EventRecords, IncidentRecord, ServiceRecord};
pub use store::{Delivery, DeliveryStore};
