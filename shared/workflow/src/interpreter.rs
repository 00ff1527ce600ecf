//! The interpreter: moves executions from state to state inside one SQLite transaction (their
//! records are [`super::execution`], the stateless data flow [`super::data_flow`]).
//!
//! Every event (a start, a callback, a timer) loads the execution, runs states until the
//! execution has to wait (a task token, a retry backoff, a Wait state, a Map's iterations) or
//! ends, and writes the result together with the messages it sent, in the same transaction.
//! A crash therefore never leaves a state half-applied: either the state change and its
//! message are both committed, or neither is.

use std::collections::VecDeque;

use rusqlite::{Transaction, params};
use serde_json::{Value, json};

use paved_core::ports::{StoreError, WorkflowError};

use super::data_flow::{
    apply_path, apply_result_path, matches_error, md5ish, secs_ms, timestamp_ms,
};
use super::definition::{Catcher, Compiled, Integration, Machine, Retrier, State};
use super::execution::{Execution, Position};
use super::paths::RefPath;
use paved_sqlite::store_error;
use paved_sqlite::{enqueue, now_millis};

pub(crate) struct Engine<'a> {
    pub root: &'a Machine,
    pub machine_arn: &'a str,
    pub tx: &'a Transaction<'a>,
    work: VecDeque<Work>,
}

enum Work {
    Drive(String),
    Reconcile(String),
}

pub(super) fn store(e: impl std::fmt::Display) -> WorkflowError {
    WorkflowError::Store(StoreError::Backend(e.to_string()))
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A runtime error of the data flow (`States.Runtime`): never retried, never caught.
pub(super) const RUNTIME: &str = "States.Runtime";

impl<'a> Engine<'a> {
    pub(crate) fn new(root: &'a Machine, machine_arn: &'a str, tx: &'a Transaction<'a>) -> Self {
        Self {
            root,
            machine_arn,
            tx,
            work: VecDeque::new(),
        }
    }

    /// Creates an execution and runs it until it waits.
    pub(crate) fn start(&mut self, execution: Execution) -> Result<(), WorkflowError> {
        let name = execution.name.clone();
        self.save(&execution, true)?;
        self.work.push_back(Work::Drive(name));
        self.finish_work()
    }

    /// Runs the queued work (drives and Map reconciliations) to quiescence.
    pub(crate) fn finish_work(&mut self) -> Result<(), WorkflowError> {
        while let Some(work) = self.work.pop_front() {
            match work {
                Work::Drive(name) => {
                    if let Some(mut e) = self.load(&name)? {
                        self.drive(&mut e)?;
                        self.save(&e, false)?;
                    }
                }
                Work::Reconcile(parent) => self.reconcile_map(&parent)?,
            }
        }
        Ok(())
    }

    fn machine(&self, e: &Execution) -> Result<&'a Machine, WorkflowError> {
        self.root
            .nested(&e.machine)
            .map_err(WorkflowError::Definition)
    }

    fn context(&self, e: &Execution, state: &str, retries: &[u32], token: Option<&str>) -> Value {
        let mut ctx = json!({
            "Execution": {"Id": e.arn, "Name": e.name, "StartTime": e.start_time, "Input": e.input},
            "State": {"Name": state, "EnteredTime": e.entered_at, "RetryCount": retries.iter().sum::<u32>()},
            "StateMachine": {"Id": self.machine_arn, "Name": self.machine_arn.rsplit(':').next().unwrap_or_default()},
        });
        if let Some(t) = token {
            ctx["Task"] = json!({"Token": t});
        }
        if let Some((index, value)) = &e.map_item {
            ctx["Map"] = json!({"Item": {"Index": index, "Value": value}});
        }
        ctx
    }

    /// Runs states until the execution waits or ends.
    fn drive(&mut self, e: &mut Execution) -> Result<(), WorkflowError> {
        let mut guard = 0u32;
        while let Position::Enter {
            state,
            input,
            retries,
        } = e.position.clone()
        {
            guard += 1;
            if guard > 10_000 {
                self.end(
                    e,
                    Err((
                        "States.Runtime".into(),
                        "the execution ran 10,000 states without waiting; is there a loop?".into(),
                    )),
                );
                return Ok(());
            }
            e.entered_at = now_rfc3339();
            if let Err(cause) = self.enter(e, &state, input, retries) {
                self.end(e, Err((RUNTIME.into(), format!("state {state}: {cause}"))));
            }
        }
        Ok(())
    }

    fn goto(e: &mut Execution, c: &Compiled, output: Value) -> Result<Option<Value>, String> {
        let (next, end) = match &c.state {
            State::Pass(s) => (s.next.clone(), s.end),
            State::Task(s) => (s.next.clone(), s.end),
            State::Wait(s) => (s.next.clone(), s.end),
            State::Map(s) => (s.next.clone(), s.end),
            _ => return Err("this state type has no Next".into()),
        };
        match (next, end) {
            (Some(n), _) => {
                e.position = Position::Enter {
                    state: n,
                    input: output,
                    retries: Vec::new(),
                };
                Ok(None)
            }
            (None, Some(true)) => Ok(Some(output)),
            _ => Err("the state has neither Next nor End".into()),
        }
    }

    /// Runs one state; a returned `Err` is a `States.Runtime` failure of the execution.
    fn enter(
        &mut self,
        e: &mut Execution,
        name: &str,
        raw: Value,
        retries: Vec<u32>,
    ) -> Result<(), String> {
        let machine = self.machine(e).map_err(|x| x.to_string())?;
        let c = machine.state(name)?;
        let ctx = self.context(e, name, &retries, None);
        let effective = apply_path(c.paths.get("InputPath"), &raw, &ctx)?;
        match &c.state {
            State::Pass(s) => {
                let mut result = match &c.parameters {
                    Some(t) => t.eval(&effective, &ctx)?,
                    None => effective.clone(),
                };
                if let Some(r) = &s.result {
                    result = r.clone();
                }
                let merged = apply_result_path(c.paths.get("ResultPath"), raw, result)?;
                let output = apply_path(c.paths.get("OutputPath"), &merged, &ctx)?;
                if let Some(out) = Self::goto(e, c, output)? {
                    self.end(e, Ok(out));
                }
            }
            State::Choice(s) => {
                let output = apply_path(c.paths.get("OutputPath"), &effective, &ctx)?;
                let next = s
                    .choices
                    .iter()
                    .find(|r| r.matches(&effective, &ctx))
                    .and_then(|r| r.next.clone())
                    .or_else(|| s.default.clone());
                match next {
                    Some(n) => {
                        e.position = Position::Enter {
                            state: n,
                            input: output,
                            retries: Vec::new(),
                        }
                    }
                    None => self.end(
                        e,
                        Err((
                            "States.NoChoiceMatched".into(),
                            format!("no choice of {name} matched and it has no Default"),
                        )),
                    ),
                }
            }
            State::Succeed(_) => {
                let output = apply_path(c.paths.get("OutputPath"), &effective, &ctx)?;
                self.end(e, Ok(output));
            }
            State::Fail(s) => {
                self.end(
                    e,
                    Err((
                        s.error.clone().unwrap_or_else(|| "States.Fail".into()),
                        s.cause.clone().unwrap_or_default(),
                    )),
                );
            }
            State::Wait(s) => {
                let now = now_millis();
                let until = if let Some(secs) = s.seconds {
                    now + i64::try_from(secs).unwrap_or(i64::MAX / 4) * 1000
                } else if let Some(t) = &s.timestamp {
                    timestamp_ms(t)?
                } else {
                    let v = c
                        .wait_seconds_path
                        .as_ref()
                        .and_then(|p| p.get(&effective, &ctx))
                        .ok_or("the Wait path matched nothing")?;
                    if s.seconds_path.is_some() {
                        now + v
                            .as_i64()
                            .filter(|n| *n >= 0)
                            .ok_or("SecondsPath must hold a non-negative integer")?
                            * 1000
                    } else {
                        timestamp_ms(v.as_str().ok_or("TimestampPath must hold a timestamp")?)?
                    }
                };
                let output = apply_path(c.paths.get("OutputPath"), &effective, &ctx)?;
                if until <= now {
                    if let Some(out) = Self::goto(e, c, output)? {
                        self.end(e, Ok(out));
                    }
                } else {
                    e.position = Position::Wait {
                        state: name.to_owned(),
                        output,
                        until,
                    };
                }
            }
            State::Task(s) => {
                let token = (c.integration == Some(Integration::SqsSendWaitForToken))
                    .then(|| uuid::Uuid::new_v4().simple().to_string());
                let ctx = self.context(e, name, &retries, token.as_deref());
                let params = c
                    .parameters
                    .as_ref()
                    .ok_or("no Parameters")?
                    .eval(&effective, &ctx)?;
                let queue = params
                    .get("QueueUrl")
                    .and_then(Value::as_str)
                    .ok_or("QueueUrl is missing")?;
                let body = match params.get("MessageBody") {
                    Some(Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => return Err("MessageBody is missing".into()),
                };
                let delay = params
                    .get("DelaySeconds")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let message_id =
                    enqueue(self.tx, queue, &body, std::time::Duration::from_secs(delay))
                        .map_err(|x| x.to_string())?;
                match token {
                    None => {
                        let result =
                            json!({"MessageId": message_id, "MD5OfMessageBody": md5ish(&body)});
                        self.task_succeeded(e, name, raw, result)?;
                    }
                    Some(token) => {
                        let now = now_millis();
                        e.position = Position::Task {
                            state: name.to_owned(),
                            input: raw,
                            retries,
                            token,
                            timeout_at: s.timeout_seconds.map(|t| now + secs_ms(t)),
                            heartbeat_at: s.heartbeat_seconds.map(|h| now + secs_ms(h)),
                        };
                    }
                }
            }
            State::Map(_) => {
                let items = c
                    .paths
                    .get("ItemsPath")
                    .and_then(Option::as_ref)
                    .and_then(|p| p.get(&effective, &ctx))
                    .and_then(Value::as_array)
                    .cloned()
                    .ok_or("ItemsPath must select an array")?;
                let attempt = retries.iter().sum::<u32>();
                e.position = Position::Map {
                    state: name.to_owned(),
                    input: raw,
                    effective,
                    retries,
                    attempt,
                    items,
                };
                self.work.push_back(Work::Reconcile(e.name.clone()));
            }
        }
        Ok(())
    }

    /// A task (or Map) produced `result`: select, place and filter it, then go on.
    fn task_succeeded(
        &mut self,
        e: &mut Execution,
        name: &str,
        raw: Value,
        result: Value,
    ) -> Result<(), String> {
        let machine = self.machine(e).map_err(|x| x.to_string())?;
        let c = machine.state(name)?;
        let ctx = self.context(e, name, &[], None);
        let selected = match &c.result_selector {
            Some(t) => t.eval(&result, &ctx)?,
            None => result,
        };
        let merged = apply_result_path(c.paths.get("ResultPath"), raw, selected)?;
        let output = apply_path(c.paths.get("OutputPath"), &merged, &ctx)?;
        if let Some(out) = Self::goto(e, c, output)? {
            self.end(e, Ok(out));
        }
        Ok(())
    }

    /// A task (or Map) failed with `error`: retry, catch, or fail the execution.
    fn state_failed(
        &mut self,
        e: &mut Execution,
        name: &str,
        raw: Value,
        mut retries: Vec<u32>,
        error: &str,
        cause: &str,
    ) -> Result<(), String> {
        let machine = self.machine(e).map_err(|x| x.to_string())?;
        let c = machine.state(name)?;
        let (retriers, catchers): (&[Retrier], &[Catcher]) = match &c.state {
            State::Task(s) => (&s.retry, &s.catch),
            State::Map(s) => (&s.retry, &s.catch),
            _ => (&[], &[]),
        };
        retries.resize(retriers.len(), 0);
        if let Some(i) = retriers
            .iter()
            .position(|r| matches_error(&r.error_equals, error))
        {
            let r = &retriers[i];
            if retries[i] < r.max_attempts {
                let mut delay = r.interval_seconds as f64
                    * r.backoff_rate
                        .powi(i32::try_from(retries[i]).unwrap_or(i32::MAX));
                if let Some(max) = r.max_delay_seconds {
                    delay = delay.min(max as f64);
                }
                retries[i] += 1;
                let until = now_millis() + (delay * 1000.0) as i64;
                e.position = Position::Backoff {
                    state: name.to_owned(),
                    input: raw,
                    retries,
                    until,
                };
                return Ok(());
            }
        }
        if let Some(k) = catchers
            .iter()
            .find(|k| matches_error(&k.error_equals, error))
        {
            let result = json!({"Error": error, "Cause": cause});
            let path = match &k.result_path {
                super::definition::PathField::Null => None,
                super::definition::PathField::Path(p) => Some(RefPath::parse(p)?),
            };
            let merged = apply_result_path(Some(&path), raw, result)?;
            e.position = Position::Enter {
                state: k.next.clone(),
                input: merged,
                retries: Vec::new(),
            };
            return Ok(());
        }
        self.end(e, Err((error.to_owned(), cause.to_owned())));
        Ok(())
    }

    fn end(&mut self, e: &mut Execution, outcome: Result<Value, (String, String)>) {
        match outcome {
            Ok(output) => {
                e.status = "SUCCEEDED".into();
                e.output = Some(output);
            }
            Err((error, cause)) => {
                e.status = "FAILED".into();
                e.error = Some(error);
                e.cause = Some(cause);
            }
        }
        e.position = Position::Done;
        if let Some(parent) = &e.parent {
            self.work.push_back(Work::Reconcile(parent.clone()));
        }
    }

    /// Continues an execution waiting on `token` with the task's answer.
    pub(crate) fn answer(
        &mut self,
        token: &str,
        answer: Result<Value, (String, String)>,
    ) -> Result<(), WorkflowError> {
        let mut e = self.find_by_token(token)?.ok_or_else(|| {
            WorkflowError::InvalidToken(
                "no task is waiting on this token; it was answered already or timed out".into(),
            )
        })?;
        let Position::Task {
            state,
            input,
            retries,
            ..
        } = e.position.clone()
        else {
            return Err(WorkflowError::InvalidToken(
                "the task is not waiting".into(),
            ));
        };
        let done = match answer {
            Ok(output) => self.task_succeeded(&mut e, &state, input, output),
            Err((error, cause)) => {
                self.state_failed(&mut e, &state, input, retries, &error, &cause)
            }
        };
        if let Err(cause) = done {
            self.end(
                &mut e,
                Err((RUNTIME.into(), format!("state {state}: {cause}"))),
            );
        }
        self.drive(&mut e)?;
        self.save(&e, false)?;
        self.finish_work()
    }

    pub(crate) fn heartbeat(&mut self, token: &str) -> Result<(), WorkflowError> {
        let mut e = self.find_by_token(token)?.ok_or_else(|| {
            WorkflowError::InvalidToken("no task is waiting on this token".into())
        })?;
        let machine = self.machine(&e)?;
        if let Position::Task {
            state,
            heartbeat_at,
            ..
        } = &mut e.position
            && let Ok(c) = machine.state(state)
            && let State::Task(s) = &c.state
            && let Some(h) = s.heartbeat_seconds
        {
            *heartbeat_at = Some(now_millis() + secs_ms(h));
        }
        self.save(&e, false)
    }

    /// Fires the timers that are due: task timeouts, heartbeat timeouts, retry backoffs and
    /// Wait states. Returns how many fired.
    pub(crate) fn fire_timers(&mut self, now: i64) -> Result<usize, WorkflowError> {
        let due: Vec<String> = self
            .tx
            .prepare_cached("SELECT name FROM wf_executions WHERE wake_at_ms IS NOT NULL AND wake_at_ms <= ?1 ORDER BY wake_at_ms LIMIT 200")
            .and_then(|mut s| s.query_map(params![now], |r| r.get(0))?.collect::<Result<_, _>>())
            .map_err(store_error)?;
        for name in &due {
            let Some(mut e) = self.load(name)? else {
                continue;
            };
            let result = match e.position.clone() {
                Position::Task {
                    state,
                    input,
                    retries,
                    timeout_at,
                    ..
                } => {
                    let (error, cause) = if timeout_at.is_some_and(|t| t <= now) {
                        (
                            "States.Timeout",
                            "the task did not answer within TimeoutSeconds",
                        )
                    } else {
                        (
                            "States.HeartbeatTimeout",
                            "the task sent no heartbeat within HeartbeatSeconds",
                        )
                    };
                    self.state_failed(&mut e, &state, input, retries, error, cause)
                        .map_err(|c| (state, c))
                }
                Position::Backoff {
                    state,
                    input,
                    retries,
                    ..
                } => {
                    e.position = Position::Enter {
                        state,
                        input,
                        retries,
                    };
                    Ok(())
                }
                Position::Wait { state, output, .. } => {
                    let machine = self.machine(&e)?;
                    let c = machine.state(&state).map_err(WorkflowError::Definition)?;
                    match Self::goto(&mut e, c, output) {
                        Ok(Some(out)) => {
                            self.end(&mut e, Ok(out));
                            Ok(())
                        }
                        Ok(None) => Ok(()),
                        Err(cause) => Err((state, cause)),
                    }
                }
                _ => Ok(()),
            };
            if let Err((state, cause)) = result {
                self.end(
                    &mut e,
                    Err((RUNTIME.into(), format!("state {state}: {cause}"))),
                );
            }
            self.drive(&mut e)?;
            self.save(&e, false)?;
        }
        self.finish_work()?;
        Ok(due.len())
    }

    /// Brings a Map state up to date with its iterations: starts more, finishes the state
    /// when all succeeded, or fails it (aborting the others) when one failed. Recomputed from
    /// the child rows each time, so a crash between a child's end and this step loses nothing.
    fn reconcile_map(&mut self, parent: &str) -> Result<(), WorkflowError> {
        let Some(mut p) = self.load(parent)? else {
            return Ok(());
        };
        let Position::Map {
            state,
            input,
            effective,
            retries,
            attempt,
            items,
        } = p.position.clone()
        else {
            return Ok(());
        };
        let prefix = format!("{}/{state}#{attempt}/", p.name);
        let children: Vec<Execution> = {
            let docs: Vec<String> = self
                .tx
                .prepare_cached("SELECT doc FROM wf_executions WHERE parent = ?1")
                .and_then(|mut s| {
                    s.query_map(params![parent], |r| r.get(0))?
                        .collect::<Result<_, _>>()
                })
                .map_err(store_error)?;
            let mut all = Vec::new();
            for d in docs {
                let c: Execution = serde_json::from_str(&d).map_err(store)?;
                if c.name.starts_with(&prefix) {
                    all.push(c);
                }
            }
            all.sort_by_key(|c| c.map_item.as_ref().map_or(0, |(i, _)| *i));
            all
        };
        let machine = self.machine(&p)?;
        let c = machine.state(&state).map_err(WorkflowError::Definition)?;
        let State::Map(m) = &c.state else {
            return Ok(());
        };
        if let Some(failed) = children.iter().find(|c| c.status == "FAILED") {
            for mut other in children.iter().filter(|c| c.status == "RUNNING").cloned() {
                other.status = "ABORTED".into();
                other.position = Position::Done;
                self.save(&other, false)?;
            }
            let (error, cause) = (
                failed.error.clone().unwrap_or_default(),
                failed.cause.clone().unwrap_or_default(),
            );
            if let Err(cause) = self.state_failed(&mut p, &state, input, retries, &error, &cause) {
                self.end(
                    &mut p,
                    Err((RUNTIME.into(), format!("state {state}: {cause}"))),
                );
            }
        } else if children.len() == items.len() && children.iter().all(|c| c.status == "SUCCEEDED")
        {
            let results = Value::Array(
                children
                    .iter()
                    .map(|c| c.output.clone().unwrap_or(Value::Null))
                    .collect(),
            );
            if let Err(cause) = self.task_succeeded(&mut p, &state, input, results) {
                self.end(
                    &mut p,
                    Err((RUNTIME.into(), format!("state {state}: {cause}"))),
                );
            }
        } else {
            let running = children.iter().filter(|c| c.status == "RUNNING").count();
            let limit = if m.max_concurrency == 0 {
                usize::MAX
            } else {
                m.max_concurrency as usize
            };
            let mut chain = p.machine.clone();
            chain.push(state.clone());
            let processor = self
                .root
                .nested(&chain)
                .map_err(WorkflowError::Definition)?;
            let start = children.len();
            let take = limit.saturating_sub(running);
            for (index, item) in items.iter().enumerate().skip(start).take(take) {
                let item = item.clone();
                let mut child = Execution {
                    name: format!("{prefix}{index}"),
                    arn: format!("{}/{state}/{index}", p.arn),
                    machine: chain.clone(),
                    parent: Some(p.name.clone()),
                    map_item: Some((index, item.clone())),
                    input: item.clone(),
                    start_time: now_rfc3339(),
                    status: "RUNNING".into(),
                    position: Position::Done,
                    output: None,
                    error: None,
                    cause: None,
                    entered_at: now_rfc3339(),
                };
                let ctx = self.context(&child, &state, &[], None);
                let child_input = match &c.parameters {
                    Some(t) => t.eval(&effective, &ctx),
                    None => Ok(item),
                };
                match child_input {
                    Ok(input) => {
                        child.position = Position::Enter {
                            state: processor.start_at.clone(),
                            input,
                            retries: Vec::new(),
                        };
                    }
                    Err(cause) => self.end(
                        &mut child,
                        Err((RUNTIME.into(), format!("ItemSelector: {cause}"))),
                    ),
                }
                self.save(&child, true)?;
                self.work.push_back(Work::Drive(child.name.clone()));
            }
        }
        self.drive(&mut p)?;
        self.save(&p, false)
    }
}
