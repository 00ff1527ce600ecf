//! The ASL subset the embedded engine runs, as types. Unknown state types, fields and task
//! resources are refused when the definition loads, with the state's name in the message, so
//! the engine never half-runs something it does not understand.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::Value;

use super::choice::ChoiceRule;
use super::paths::{RefPath, Template};

/// Where a path field points: absent means `$`, JSON `null` means "nothing" (discard).
#[derive(Debug, Clone, PartialEq)]
pub enum PathField {
    Null,
    Path(String),
}

impl Default for PathField {
    fn default() -> Self {
        Self::Path("$".into())
    }
}

impl<'de> Deserialize<'de> for PathField {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(Self::Null),
            Value::String(s) => Ok(Self::Path(s)),
            other => Err(serde::de::Error::custom(format!(
                "a path must be a string or null, not {other}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Retrier {
    pub error_equals: Vec<String>,
    #[serde(default = "one")]
    pub interval_seconds: u64,
    #[serde(default = "three")]
    pub max_attempts: u32,
    #[serde(default = "two")]
    pub backoff_rate: f64,
    pub max_delay_seconds: Option<u64>,
    /// `FULL` or `NONE`; the embedded engine applies no jitter (documented).
    pub jitter_strategy: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

fn one() -> u64 {
    1
}
fn three() -> u32 {
    3
}
fn two() -> f64 {
    2.0
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Catcher {
    pub error_equals: Vec<String>,
    pub next: String,
    #[serde(default)]
    pub result_path: PathField,
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct PassState {
    pub comment: Option<String>,
    #[serde(default)]
    pub input_path: PathField,
    #[serde(default)]
    pub output_path: PathField,
    #[serde(default)]
    pub result_path: PathField,
    pub parameters: Option<Value>,
    pub result: Option<Value>,
    pub next: Option<String>,
    pub end: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct TaskState {
    pub comment: Option<String>,
    pub resource: String,
    #[serde(default)]
    pub input_path: PathField,
    #[serde(default)]
    pub output_path: PathField,
    #[serde(default)]
    pub result_path: PathField,
    pub parameters: Option<Value>,
    pub result_selector: Option<Value>,
    pub timeout_seconds: Option<u64>,
    pub heartbeat_seconds: Option<u64>,
    #[serde(default)]
    pub retry: Vec<Retrier>,
    #[serde(default)]
    pub catch: Vec<Catcher>,
    pub next: Option<String>,
    pub end: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ChoiceState {
    pub comment: Option<String>,
    #[serde(default)]
    pub input_path: PathField,
    #[serde(default)]
    pub output_path: PathField,
    pub choices: Vec<ChoiceRule>,
    pub default: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct WaitState {
    pub comment: Option<String>,
    #[serde(default)]
    pub input_path: PathField,
    #[serde(default)]
    pub output_path: PathField,
    pub seconds: Option<u64>,
    pub seconds_path: Option<String>,
    pub timestamp: Option<String>,
    pub timestamp_path: Option<String>,
    pub next: Option<String>,
    pub end: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct ProcessorConfig {
    /// Only `INLINE` (distributed maps read from S3 and are out of scope).
    pub mode: Option<String>,
    pub execution_type: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct Processor {
    pub comment: Option<String>,
    pub processor_config: Option<ProcessorConfig>,
    pub start_at: String,
    pub states: BTreeMap<String, State>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct MapState {
    pub comment: Option<String>,
    #[serde(default)]
    pub input_path: PathField,
    #[serde(default)]
    pub output_path: PathField,
    #[serde(default)]
    pub result_path: PathField,
    pub items_path: Option<String>,
    pub item_selector: Option<Value>,
    /// The older name of `ItemSelector`.
    pub parameters: Option<Value>,
    pub item_processor: Option<Processor>,
    /// The older name of `ItemProcessor`.
    pub iterator: Option<Processor>,
    #[serde(default)]
    pub max_concurrency: u32,
    pub result_selector: Option<Value>,
    #[serde(default)]
    pub retry: Vec<Retrier>,
    #[serde(default)]
    pub catch: Vec<Catcher>,
    pub next: Option<String>,
    pub end: Option<bool>,
}

impl MapState {
    pub fn processor(&self) -> Option<&Processor> {
        self.item_processor.as_ref().or(self.iterator.as_ref())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct SucceedState {
    pub comment: Option<String>,
    #[serde(default)]
    pub input_path: PathField,
    #[serde(default)]
    pub output_path: PathField,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
pub struct FailState {
    pub comment: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "Type")]
pub enum State {
    Pass(PassState),
    Task(Box<TaskState>),
    Choice(ChoiceState),
    Wait(WaitState),
    Map(Box<MapState>),
    Succeed(SucceedState),
    Fail(FailState),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct RawMachine {
    comment: Option<String>,
    start_at: String,
    states: BTreeMap<String, State>,
    version: Option<String>,
}

/// The task integrations the engine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integration {
    /// `arn:aws:states:::sqs:sendMessage`: send and go on.
    SqsSend,
    /// `arn:aws:states:::sqs:sendMessage.waitForTaskToken`: send, then wait for a callback.
    SqsSendWaitForToken,
}

/// A compiled state: its definition plus the parsed paths and templates.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub state: State,
    pub integration: Option<Integration>,
    pub parameters: Option<Template>,
    pub result_selector: Option<Template>,
    pub wait_seconds_path: Option<RefPath>,
    pub paths: HashMap<&'static str, Option<RefPath>>,
}

/// One machine: the top level, or a Map state's item processor.
#[derive(Debug, Clone)]
pub struct Machine {
    pub start_at: String,
    pub states: HashMap<String, Compiled>,
    /// Item processors of Map states, by the Map state's name.
    pub processors: HashMap<String, Machine>,
}

impl Machine {
    /// Loads an ASL document, replacing `${Name}` placeholders (SAM's
    /// `DefinitionSubstitutions`) first. Any placeholder without a value is refused.
    pub fn load(text: &str, substitutions: &HashMap<String, String>) -> Result<Self, String> {
        let mut doc: Value =
            serde_json::from_str(text).map_err(|e| format!("the definition is not JSON: {e}"))?;
        substitute(&mut doc, substitutions)?;
        let raw: RawMachine = serde_json::from_value(doc)
            .map_err(|e| format!("the definition is outside the supported subset: {e}"))?;
        let _ = (&raw.comment, &raw.version);
        compile(&raw.start_at, &raw.states, "")
    }

    pub fn state(&self, name: &str) -> Result<&Compiled, String> {
        self.states
            .get(name)
            .ok_or_else(|| format!("no state named {name}"))
    }

    /// The machine a Map state chain (`["MapA", "MapB"]`) runs.
    pub fn nested(&self, chain: &[String]) -> Result<&Machine, String> {
        let mut at = self;
        for name in chain {
            at = at
                .processors
                .get(name)
                .ok_or_else(|| format!("no Map state named {name}"))?;
        }
        Ok(at)
    }
}

fn substitute(v: &mut Value, subs: &HashMap<String, String>) -> Result<(), String> {
    match v {
        Value::String(s) if s.contains("${") => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let end = rest[start..]
                    .find('}')
                    .ok_or_else(|| format!("unclosed placeholder in {s:?}"))?;
                let name = &rest[start + 2..start + end];
                let value = subs.get(name).ok_or_else(|| {
                    format!("the definition uses ${{{name}}} but no substitution was given for it")
                })?;
                out.push_str(value);
                rest = &rest[start + end + 1..];
            }
            out.push_str(rest);
            *s = out;
            Ok(())
        }
        Value::Object(map) => map.values_mut().try_for_each(|x| substitute(x, subs)),
        Value::Array(items) => items.iter_mut().try_for_each(|x| substitute(x, subs)),
        _ => Ok(()),
    }
}

fn path(field: &PathField) -> Result<Option<RefPath>, String> {
    match field {
        PathField::Null => Ok(None),
        PathField::Path(p) => RefPath::parse(p).map(Some),
    }
}

fn check_next(
    states: &BTreeMap<String, State>,
    name: &str,
    next: Option<&String>,
    end: Option<bool>,
) -> Result<(), String> {
    match (next, end) {
        (Some(n), None | Some(false)) if states.contains_key(n) => Ok(()),
        (Some(n), None | Some(false)) => Err(format!(
            "state {name}: Next names {n}, which does not exist"
        )),
        (None, Some(true)) => Ok(()),
        _ => Err(format!(
            "state {name} needs exactly one of Next or End: true"
        )),
    }
}

fn compile(
    start_at: &str,
    states: &BTreeMap<String, State>,
    scope: &str,
) -> Result<Machine, String> {
    if !states.contains_key(start_at) {
        return Err(format!(
            "{scope}StartAt names {start_at}, which does not exist"
        ));
    }
    let mut compiled = HashMap::new();
    let mut processors = HashMap::new();
    for (name, state) in states {
        let here = |e: String| format!("{scope}state {name}: {e}");
        let mut c = Compiled {
            state: state.clone(),
            integration: None,
            parameters: None,
            result_selector: None,
            wait_seconds_path: None,
            paths: HashMap::new(),
        };
        let catchers_ok = |catch: &[Catcher]| {
            catch.iter().try_for_each(|k| {
                if states.contains_key(&k.next) {
                    path(&k.result_path).map(|_| ())
                } else {
                    Err(format!("Catch names {}, which does not exist", k.next))
                }
            })
        };
        match state {
            State::Pass(s) => {
                check_next(states, name, s.next.as_ref(), s.end)?;
                c.parameters = s
                    .parameters
                    .as_ref()
                    .map(Template::compile)
                    .transpose()
                    .map_err(here)?;
                for (k, p) in [
                    ("InputPath", &s.input_path),
                    ("OutputPath", &s.output_path),
                    ("ResultPath", &s.result_path),
                ] {
                    c.paths.insert(k, path(p).map_err(here)?);
                }
            }
            State::Task(s) => {
                check_next(states, name, s.next.as_ref(), s.end)?;
                c.integration = Some(match s.resource.as_str() {
                    "arn:aws:states:::sqs:sendMessage" => Integration::SqsSend,
                    "arn:aws:states:::sqs:sendMessage.waitForTaskToken" => {
                        Integration::SqsSendWaitForToken
                    }
                    other => {
                        return Err(here(format!(
                            "the resource {other} is not supported by the embedded engine \
                             (only sqs:sendMessage and sqs:sendMessage.waitForTaskToken)"
                        )));
                    }
                });
                let params = s.parameters.as_ref().ok_or_else(|| {
                    here("an SQS task needs Parameters with QueueUrl and MessageBody".into())
                })?;
                if params.get("QueueUrl").and_then(Value::as_str).is_none() {
                    return Err(here("Parameters.QueueUrl must be a fixed string".into()));
                }
                let template = Template::compile(params).map_err(here)?;
                if c.integration == Some(Integration::SqsSendWaitForToken)
                    && !template.mentions_task_token()
                {
                    return Err(here(
                        "a .waitForTaskToken task must pass $$.Task.Token in its Parameters".into(),
                    ));
                }
                c.parameters = Some(template);
                c.result_selector = s
                    .result_selector
                    .as_ref()
                    .map(Template::compile)
                    .transpose()
                    .map_err(here)?;
                for (k, p) in [
                    ("InputPath", &s.input_path),
                    ("OutputPath", &s.output_path),
                    ("ResultPath", &s.result_path),
                ] {
                    c.paths.insert(k, path(p).map_err(here)?);
                }
                catchers_ok(&s.catch).map_err(here)?;
                if s.heartbeat_seconds
                    .is_some_and(|h| s.timeout_seconds.is_some_and(|t| h >= t))
                {
                    return Err(here(
                        "HeartbeatSeconds must be smaller than TimeoutSeconds".into(),
                    ));
                }
            }
            State::Choice(s) => {
                if s.choices.is_empty() {
                    return Err(here("a Choice state needs at least one choice".into()));
                }
                for rule in &s.choices {
                    rule.validate(true).map_err(here)?;
                    let next = rule.next.as_deref().unwrap_or_default();
                    if !states.contains_key(next) {
                        return Err(here(format!("a choice names {next}, which does not exist")));
                    }
                }
                if let Some(d) = &s.default
                    && !states.contains_key(d)
                {
                    return Err(here(format!("Default names {d}, which does not exist")));
                }
                for (k, p) in [("InputPath", &s.input_path), ("OutputPath", &s.output_path)] {
                    c.paths.insert(k, path(p).map_err(here)?);
                }
            }
            State::Wait(s) => {
                check_next(states, name, s.next.as_ref(), s.end)?;
                let set = [
                    s.seconds.is_some(),
                    s.seconds_path.is_some(),
                    s.timestamp.is_some(),
                    s.timestamp_path.is_some(),
                ];
                if set.iter().filter(|x| **x).count() != 1 {
                    return Err(here("a Wait state needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath".into()));
                }
                if let Some(t) = &s.timestamp {
                    chrono::DateTime::parse_from_rfc3339(t)
                        .map_err(|e| here(format!("Timestamp: {e}")))?;
                }
                c.wait_seconds_path = s
                    .seconds_path
                    .as_deref()
                    .or(s.timestamp_path.as_deref())
                    .map(RefPath::parse)
                    .transpose()
                    .map_err(here)?;
                for (k, p) in [("InputPath", &s.input_path), ("OutputPath", &s.output_path)] {
                    c.paths.insert(k, path(p).map_err(here)?);
                }
            }
            State::Map(s) => {
                check_next(states, name, s.next.as_ref(), s.end)?;
                let processor = s
                    .processor()
                    .ok_or_else(|| here("a Map state needs an ItemProcessor".into()))?;
                if let Some(cfg) = &processor.processor_config
                    && cfg.mode.as_deref().is_some_and(|m| m != "INLINE")
                {
                    return Err(here("only INLINE Map states are supported".into()));
                }
                processors.insert(
                    name.clone(),
                    compile(
                        &processor.start_at,
                        &processor.states,
                        &format!("{scope}{name} > "),
                    )?,
                );
                c.parameters = s
                    .item_selector
                    .as_ref()
                    .or(s.parameters.as_ref())
                    .map(Template::compile)
                    .transpose()
                    .map_err(here)?;
                c.result_selector = s
                    .result_selector
                    .as_ref()
                    .map(Template::compile)
                    .transpose()
                    .map_err(here)?;
                for (k, p) in [
                    ("InputPath", &s.input_path),
                    ("OutputPath", &s.output_path),
                    ("ResultPath", &s.result_path),
                ] {
                    c.paths.insert(k, path(p).map_err(here)?);
                }
                c.paths.insert(
                    "ItemsPath",
                    Some(RefPath::parse(s.items_path.as_deref().unwrap_or("$")).map_err(here)?),
                );
                catchers_ok(&s.catch).map_err(here)?;
            }
            State::Succeed(s) => {
                for (k, p) in [("InputPath", &s.input_path), ("OutputPath", &s.output_path)] {
                    c.paths.insert(k, path(p).map_err(here)?);
                }
            }
            State::Fail(_) => {}
        }
        compiled.insert(name.clone(), c);
    }
    Ok(Machine {
        start_at: start_at.to_owned(),
        states: compiled,
        processors,
    })
}
