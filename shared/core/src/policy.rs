//! Guardrails as Rego, evaluated in-process with `regorus`: no OPA sidecar. paved ships a
//! default bundle (`shared/core/policies`); platform teams extend or replace it with their own
//! `.rego` files in the `paved.guardrails` package and their own `data.paved.config`.

use crate::ErrorCode;
use serde::Serialize;
use serde_json::Value;

use crate::error::Error;

/// The default bundle: the guardrails, their configuration and their tests.
pub const DEFAULT_POLICIES: &[(&str, &str)] = &[
    (
        "guardrails.rego",
        include_str!("../policies/guardrails.rego"),
    ),
    (
        "guardrails_test.rego",
        include_str!("../policies/guardrails_test.rego"),
    ),
];
pub const DEFAULT_CONFIG: &str = include_str!("../policies/config.json");

/// One broken guardrail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PolicyViolation {
    pub rule: String,
    pub message: String,
}

/// The verdict on a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestVerdict {
    pub violations: Vec<PolicyViolation>,
    #[serde(rename = "needsApproval")]
    pub needs_approval: bool,
}

/// Compiled policies, cloned per evaluation (a clone shares the parsed modules).
#[derive(Debug, Clone)]
pub struct PolicyEngine {
    engine: regorus::Engine,
    /// `data.<package>.test_<name>` for every test rule of every `*_test` package.
    tests: Vec<String>,
}

/// Finds the test rules of a Rego source: `test_*` rules in a package ending in `_test`.
fn test_rules(source: &str) -> Vec<String> {
    let mut package = None;
    let mut rules = Vec::new();
    for line in source.lines() {
        if let Some(p) = line.strip_prefix("package ") {
            package = Some(p.trim().to_owned());
        } else if let (Some(p), true) = (&package, line.starts_with("test_")) {
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let rule = format!("data.{p}.{name}");
            if p.ends_with("_test") && !rules.contains(&rule) {
                rules.push(rule);
            }
        }
    }
    rules
}

fn policy_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Invalid {
        code: ErrorCode::InvalidPolicy,
        message: format!("{what}: {e}"),
        violations: Vec::new(),
    }
}

impl PolicyEngine {
    /// The default bundle alone.
    pub fn default_bundle() -> Result<Self, Error> {
        Self::new(
            DEFAULT_POLICIES
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned())),
            DEFAULT_CONFIG,
        )
    }

    /// Policies from `(file name, Rego text)` pairs and the `data` document as JSON.
    pub fn new(
        sources: impl IntoIterator<Item = (String, String)>,
        data_json: &str,
    ) -> Result<Self, Error> {
        let mut engine = regorus::Engine::new();
        engine.set_strict_builtin_errors(true);
        let mut tests = Vec::new();
        for (name, text) in sources {
            tests.extend(test_rules(&text));
            engine
                .add_policy(name.clone(), text)
                .map_err(|e| policy_error(&format!("policy {name} does not compile"), e))?;
        }
        engine
            .add_data_json(data_json)
            .map_err(|e| policy_error("the policy data is not valid", e))?;
        let this = Self { engine, tests };
        // Fail at start-up, not on the first request, when the rules the platform needs are missing.
        this.evaluate_request(&serde_json::json!({
            "request": {"template": "", "name": "", "owner": "", "environment": "", "parameters": {}, "requester": ""},
            "template": {}, "usage": {"team_active_resources": 0}
        }))?;
        Ok(this)
    }

    /// An engine with `input` set: cloned once per decision (a clone shares the parsed
    /// modules), then asked for every rule the decision needs.
    fn with_input(&self, input: &Value) -> Result<regorus::Engine, Error> {
        let mut engine = self.engine.clone();
        let input = serde_json::from_value::<regorus::Value>(input.clone())
            .map_err(|e| policy_error("the policy input", e))?;
        engine.set_input(input);
        Ok(engine)
    }

    fn eval_on(engine: &mut regorus::Engine, rule: &str) -> Result<Value, Error> {
        let value = engine
            .eval_rule(rule.to_owned())
            .map_err(|e| policy_error(&format!("evaluating {rule}"), e))?;
        if value == regorus::Value::Undefined {
            return Ok(Value::Null);
        }
        serde_json::to_value(&value).map_err(|e| policy_error(&format!("reading {rule}"), e))
    }

    fn eval(&self, input: &Value, rule: &str) -> Result<Value, Error> {
        Self::eval_on(&mut self.with_input(input)?, rule)
    }

    fn violations_on(
        engine: &mut regorus::Engine,
        rule: &str,
    ) -> Result<Vec<PolicyViolation>, Error> {
        let mut out: Vec<PolicyViolation> = match Self::eval_on(engine, rule)? {
            Value::Null => Vec::new(),
            value => serde_json::from_value(value).map_err(|e| {
                policy_error(&format!("{rule} must be a set of {{rule, message}}"), e)
            })?,
        };
        out.sort_by(|a, b| a.rule.cmp(&b.rule).then_with(|| a.message.cmp(&b.message)));
        Ok(out)
    }

    /// Evaluates `data.paved.guardrails.deny` and `needs_approval` for a request.
    pub fn evaluate_request(&self, input: &Value) -> Result<RequestVerdict, Error> {
        let mut engine = self.with_input(input)?;
        let violations = Self::violations_on(&mut engine, "data.paved.guardrails.deny")?;
        let needs_approval = Self::eval_on(&mut engine, "data.paved.guardrails.needs_approval")?
            .as_bool()
            .unwrap_or(false);
        Ok(RequestVerdict {
            violations,
            needs_approval,
        })
    }

    /// The group whose members approve (`data.paved.config.approver_group`), if configured.
    pub fn approver_group(&self) -> Option<String> {
        self.eval(&serde_json::json!({}), "data.paved.config.approver_group")
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
    }

    /// Evaluates `data.paved.guardrails.approval_deny` for an approval.
    pub fn evaluate_approval(&self, input: &Value) -> Result<Vec<PolicyViolation>, Error> {
        Self::violations_on(
            &mut self.with_input(input)?,
            "data.paved.guardrails.approval_deny",
        )
    }

    /// Runs every `test_` rule of every `*_test` package, as `opa test` does; returns each
    /// test's name and whether it passed.
    pub fn run_tests(&self) -> Vec<(String, bool)> {
        self.tests
            .iter()
            .map(|rule| {
                let mut engine = self.engine.clone();
                let passed = engine
                    .eval_rule(rule.clone())
                    .is_ok_and(|v| v == regorus::Value::from(true));
                (rule.clone(), passed)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_default_bundles_rego_tests_pass() {
        let engine = PolicyEngine::default_bundle().expect("compiles");
        let results = engine.run_tests();
        assert!(results.len() >= 7, "found the Rego tests: {results:?}");
        let failed: Vec<&String> = results
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(n, _)| n)
            .collect();
        assert!(failed.is_empty(), "failing Rego tests: {failed:?}");
    }

    #[test]
    fn violations_carry_rule_ids_and_messages() {
        let engine = PolicyEngine::default_bundle().expect("compiles");
        let verdict = engine
            .evaluate_request(&json!({
                "request": {"template": "postgres-database", "name": "Bad_Name", "owner": "group:default/team-a",
                            "environment": "production", "parameters": {"storage_gb": 500}, "requester": "user:default/alice"},
                "template": {"name": "postgres-database", "environments": ["development", "production"]},
                "usage": {"team_active_resources": 0}
            }))
            .expect("evaluates");
        let rules: Vec<&str> = verdict.violations.iter().map(|v| v.rule.as_str()).collect();
        assert_eq!(rules, ["naming.pattern", "size.limit"]);
        assert!(
            verdict.violations[1].message.contains("storage_gb is 500"),
            "{:?}",
            verdict.violations
        );
        assert!(verdict.needs_approval);
    }

    #[test]
    fn a_platform_team_extends_the_bundle() {
        let mut sources: Vec<(String, String)> = DEFAULT_POLICIES
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        sources.push((
            "acme.rego".into(),
            r#"package paved.guardrails
import rego.v1
deny contains {"rule": "acme.no-fridays", "message": "no provisioning named friday"} if input.request.name == "friday"
"#
            .into(),
        ));
        let engine = PolicyEngine::new(sources, DEFAULT_CONFIG).expect("compiles");
        let verdict = engine
            .evaluate_request(&json!({"request": {"template": "sqs-queue", "name": "friday", "owner": "o", "environment": "staging",
                                                  "parameters": {}, "requester": "u"},
                                      "template": {}, "usage": {"team_active_resources": 0}}))
            .expect("evaluates");
        assert_eq!(
            verdict
                .violations
                .iter()
                .map(|v| v.rule.as_str())
                .collect::<Vec<_>>(),
            ["acme.no-fridays"]
        );
    }

    #[test]
    fn broken_policies_are_refused_at_load() {
        let err = PolicyEngine::new(
            [(
                "bad.rego".to_owned(),
                "package x\nthis is not rego".to_owned(),
            )],
            DEFAULT_CONFIG,
        )
        .expect_err("refused");
        assert_eq!(err.code(), "invalid_policy");
        assert!(
            PolicyEngine::new(
                DEFAULT_POLICIES
                    .iter()
                    .map(|(n, t)| ((*n).to_owned(), (*t).to_owned())),
                "{not json"
            )
            .is_err()
        );
    }

    #[test]
    fn a_failing_rego_test_is_reported_as_failing() {
        let mut sources: Vec<(String, String)> = DEFAULT_POLICIES
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        sources.push((
            "x_test.rego".into(),
            "package x_test\nimport rego.v1\ntest_fails if { 1 == 2 }\ntest_holds if { 1 == 1 }\n"
                .into(),
        ));
        let results = PolicyEngine::new(sources, DEFAULT_CONFIG)
            .expect("compiles")
            .run_tests();
        assert!(
            results.contains(&("data.x_test.test_fails".to_owned(), false)),
            "{results:?}"
        );
        assert!(
            results.contains(&("data.x_test.test_holds".to_owned(), true)),
            "{results:?}"
        );
    }
}
