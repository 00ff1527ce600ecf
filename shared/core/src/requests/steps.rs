//! The step bookkeeping of a request, on the request itself: the worker starts a step, records
//! how it went, and the state machine's outcome finishes the request. Each method is one
//! change of the record, applied inside [`RequestRepository::update`](super::RequestRepository::update)
//! (so a concurrent change retries it, and a duplicate delivery changes nothing twice).

use crate::ErrorCode;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{Failure, ProvisioningRequest, RequestStatus, StepStatus};
use crate::Error;
use crate::messages::Outcome;
use crate::tasks::TaskAction;

/// Whether a step may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStart {
    /// Marked running; this is its `attempts`th attempt.
    Started { attempts: u32 },
    /// The request was cancelled meanwhile: the step must not run.
    Cancelled,
}

impl ProvisioningRequest {
    /// Marks `step` running (and the request PROVISIONING at its first step).
    pub fn start_step(&mut self, step: &str, now: DateTime<Utc>) -> Result<StepStart, Error> {
        if self.status == RequestStatus::Cancelled {
            return Ok(StepStart::Cancelled);
        }
        if self.status == RequestStatus::Queued {
            self.advance(RequestStatus::Provisioning, "the first step started", now)?;
        }
        let s = self.step_mut(step).ok_or_else(|| {
            Error::bad_request(
                ErrorCode::UnknownStep,
                format!("the request has no step {step}"),
            )
        })?;
        s.status = StepStatus::Running;
        s.attempts += 1;
        s.started_at.get_or_insert(now);
        let attempts = s.attempts;
        self.log(now, "step_started", format!("{step}: attempt {attempts}"));
        Ok(StepStart::Started { attempts })
    }

    /// Records that `action` on `step` succeeded with `outputs`. A delete that succeeded makes
    /// a DEPROVISIONING request DELETED.
    pub fn record_step_success(
        &mut self,
        step: &str,
        action: TaskAction,
        outputs: &Value,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if action == TaskAction::Delete {
            if self.status == RequestStatus::Deprovisioning {
                self.advance(RequestStatus::Deleted, "every resource was removed", now)?;
            }
            return Ok(());
        }
        if let Some(s) = self.step_mut(step) {
            s.finished_at = Some(now);
            if action == TaskAction::Apply {
                s.status = StepStatus::Succeeded;
                s.outputs = outputs.clone();
                s.error = None;
            } else {
                s.status = StepStatus::Undone;
            }
        }
        let event = if action == TaskAction::Apply {
            "step_succeeded"
        } else {
            "step_undone"
        };
        self.log(now, event, step);
        Ok(())
    }

    /// Records that `action` on `step` failed. The first failure is the request's; a failed
    /// delete makes a DEPROVISIONING request DELETE_FAILED.
    pub fn record_step_failure(
        &mut self,
        step: &str,
        action: TaskAction,
        failure: &Failure,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if action == TaskAction::Delete {
            self.failure = Some(failure.clone());
            if self.status == RequestStatus::Deprovisioning {
                self.advance(RequestStatus::DeleteFailed, &failure.message, now)?;
            }
            return Ok(());
        }
        if let Some(s) = self.step_mut(step) {
            s.status = StepStatus::Failed;
            s.error = Some(failure.message.clone());
            s.finished_at = Some(now);
        }
        if self.failure.is_none() {
            self.failure = Some(failure.clone());
        }
        self.log(now, "step_failed", format!("{step}: {}", failure.message));
        Ok(())
    }

    /// The state machine's outcome: READY with every succeeded step's outputs, or FAILED with
    /// the first step failure. A finished request stays as it is (a redelivered outcome).
    pub fn finish(
        &mut self,
        outcome: Outcome,
        execution: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        if self.status.is_finished() {
            return Ok(());
        }
        if self.status == RequestStatus::Queued {
            self.advance(RequestStatus::Provisioning, "the execution started", now)?;
        }
        match outcome {
            Outcome::Ready => {
                let mut outputs = Map::new();
                for s in self
                    .steps
                    .iter()
                    .filter(|s| s.status == StepStatus::Succeeded)
                {
                    if let Value::Object(o) = &s.outputs {
                        outputs.extend(o.clone());
                    }
                }
                self.outputs = Value::Object(outputs);
                self.advance(
                    RequestStatus::Ready,
                    &format!("every step succeeded ({execution})"),
                    now,
                )
            }
            Outcome::Failed => {
                let failure = self.failure.clone().unwrap_or_else(|| Failure {
                    code: "NonRetryable.ProvisioningFailed".into(),
                    message: "a step failed and the applied steps were undone".into(),
                });
                self.failure = Some(failure.clone());
                self.advance(RequestStatus::Failed, &failure.message, now)
            }
        }
    }
}
