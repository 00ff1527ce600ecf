//! The whole provisioning path in-process on a fresh data directory: HTTP request → guardrails
//! → workflow engine → task queue → worker → real driver → READY, and the faults that must lose
//! nothing and create nothing twice.

mod api;
mod chatops;
mod faults;
mod harness;
mod leaks;
mod leaks_real;
mod postgres;
mod reconcile;
mod reconcile_real;
