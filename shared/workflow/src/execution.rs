//! An execution's record: where it is ([`Position`]), what it holds ([`Execution`]), and its
//! row in `wf_executions` (loaded, found by task token, saved with its wake-up time).

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use paved_core::ports::{ExecutionStatus, WorkflowError};

use super::interpreter::{Engine, store};
use paved_sqlite::store_error;

/// Where an execution is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "at", rename_all = "camelCase")]
pub(crate) enum Position {
    /// About to run `state` (never committed: the interpreter always runs on).
    Enter {
        state: String,
        input: Value,
        retries: Vec<u32>,
    },
    /// Waiting for the task token's answer.
    #[serde(rename_all = "camelCase")]
    Task {
        state: String,
        input: Value,
        retries: Vec<u32>,
        token: String,
        timeout_at: Option<i64>,
        heartbeat_at: Option<i64>,
    },
    /// Waiting before a retry.
    Backoff {
        state: String,
        input: Value,
        retries: Vec<u32>,
        until: i64,
    },
    /// In a Wait state.
    Wait {
        state: String,
        output: Value,
        until: i64,
    },
    /// Running a Map state's iterations as child executions.
    #[serde(rename_all = "camelCase")]
    Map {
        state: String,
        input: Value,
        effective: Value,
        retries: Vec<u32>,
        attempt: u32,
        items: Vec<Value>,
    },
    Done,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Execution {
    pub name: String,
    pub arn: String,
    /// The chain of Map states whose item processor this execution runs (empty: top level).
    pub machine: Vec<String>,
    pub parent: Option<String>,
    pub map_item: Option<(usize, Value)>,
    pub input: Value,
    pub start_time: String,
    pub status: String,
    pub position: Position,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
    pub entered_at: String,
}

impl Execution {
    pub(crate) fn status(&self) -> ExecutionStatus {
        ExecutionStatus {
            status: self.status.clone(),
            output: self.output.clone(),
            error: self.error.clone(),
            cause: self.cause.clone(),
        }
    }
}

impl Engine<'_> {
    pub(crate) fn load(&self, name: &str) -> Result<Option<Execution>, WorkflowError> {
        let doc: Option<String> = self
            .tx
            .prepare_cached("SELECT doc FROM wf_executions WHERE name = ?1")
            .and_then(|mut s| s.query_row(params![name], |r| r.get(0)).optional())
            .map_err(store_error)?;
        doc.map(|d| serde_json::from_str(&d).map_err(store))
            .transpose()
    }

    pub(crate) fn find_by_token(&self, token: &str) -> Result<Option<Execution>, WorkflowError> {
        let name: Option<String> = self
            .tx
            .prepare_cached("SELECT name FROM wf_executions WHERE token = ?1")
            .and_then(|mut s| s.query_row(params![token], |r| r.get(0)).optional())
            .map_err(store_error)?;
        match name {
            Some(n) => self.load(&n),
            None => Ok(None),
        }
    }

    pub(crate) fn save(&self, e: &Execution, insert: bool) -> Result<(), WorkflowError> {
        let (token, wake) = match &e.position {
            Position::Task {
                token,
                timeout_at,
                heartbeat_at,
                ..
            } => (
                Some(token.as_str()),
                match (timeout_at, heartbeat_at) {
                    (Some(a), Some(b)) => Some(*a.min(b)),
                    (a, b) => a.or(*b),
                },
            ),
            Position::Backoff { until, .. } | Position::Wait { until, .. } => (None, Some(*until)),
            _ => (None, None),
        };
        let doc = serde_json::to_string(e).map_err(store)?;
        let sql = if insert {
            "INSERT INTO wf_executions (name, parent, status, doc, wake_at_ms, token) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        } else {
            "UPDATE wf_executions SET parent = ?2, status = ?3, doc = ?4, wake_at_ms = ?5, token = ?6 WHERE name = ?1"
        };
        self.tx
            .prepare_cached(sql)
            .and_then(|mut s| s.execute(params![e.name, e.parent, e.status, doc, wake, token]))
            .map_err(store_error)?;
        Ok(())
    }

    /// The earliest timer, if any.
    pub(crate) fn next_timer(&self) -> Result<Option<i64>, WorkflowError> {
        self.tx
            .prepare_cached(
                "SELECT MIN(wake_at_ms) FROM wf_executions WHERE wake_at_ms IS NOT NULL",
            )
            .and_then(|mut s| s.query_row([], |r| r.get(0)))
            .map_err(|e| store_error(e).into())
    }

    /// Top-level executions that are RUNNING (for tests and operators).
    pub(crate) fn running(&self) -> Result<usize, WorkflowError> {
        self.tx
            .prepare_cached(
                "SELECT COUNT(*) FROM wf_executions WHERE status = 'RUNNING' AND parent IS NULL",
            )
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
            .map(|n| usize::try_from(n).unwrap_or(0))
            .map_err(|e| store_error(e).into())
    }
}
