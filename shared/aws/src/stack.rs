//! The stack of `infra/template.yaml`, read from the template itself, so that
//! `paved aws bootstrap` creates on an emulator the same table, queues and state machine that
//! `sam deploy` creates on AWS: the key schema, TTL and PITR of the table, each queue's
//! visibility, retention and redrive policy, and the state machine's definition with its
//! substitutions. Nothing here is a second copy of those settings.
//!
//! IAM is not bootstrapped (moto does not enforce it); the tests below hold the template to
//! its rules for generated credentials: only the provision worker may use Secrets Manager,
//! and only under `paved/<stack>/`.

use std::collections::BTreeMap;

use serde_yaml::Value;

/// The SAM template, as deployed.
pub const TEMPLATE: &str = include_str!("../../../infra/template.yaml");

/// The resources of the template that hold state, as the bootstrap creates them.
#[derive(Debug, Clone, PartialEq)]
pub struct StackSpec {
    pub table: TableSpec,
    /// Dead-letter queues first, so that a redrive policy's target exists when its queue is
    /// created.
    pub queues: Vec<QueueSpec>,
    pub state_machine: StateMachineSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    pub logical_id: String,
    /// `(name, type)` of every key attribute.
    pub attributes: Vec<(String, String)>,
    /// `(name, HASH|RANGE)`.
    pub key_schema: Vec<(String, String)>,
    pub ttl_attribute: Option<String>,
    pub point_in_time_recovery: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueSpec {
    pub logical_id: String,
    pub visibility_timeout: Option<u32>,
    pub message_retention: Option<u32>,
    /// The dead-letter queue's logical id and `maxReceiveCount`.
    pub redrive: Option<(String, u32)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StateMachineSpec {
    pub logical_id: String,
    /// The definition file, relative to `infra/`.
    pub definition_uri: String,
    /// Substitution name → the logical id of the queue whose URL it takes.
    pub substitutions: BTreeMap<String, String>,
}

/// The physical name the bootstrap gives a resource: `<prefix>-<logical id in kebab case>`
/// (`paved-task-dead-letter-queue`). `paved up` on the AWS backend defaults to these names.
pub fn physical_name(prefix: &str, logical_id: &str) -> String {
    let mut out = String::from(prefix);
    for (i, c) in logical_id.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 || !prefix.is_empty() {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn tagged<'a>(v: &'a Value, tag: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag == tag => Some(&t.value),
        Value::Mapping(m) if m.len() == 1 => m.get(format!("Fn::{}", tag.trim_start_matches('!'))),
        _ => None,
    }
}

/// A logical id referenced by `!Ref X` or `!GetAtt X.Attr`.
fn referenced(v: &Value) -> Option<String> {
    if let Some(Value::String(id)) = tagged(v, "!Ref").or_else(|| match v {
        Value::Mapping(m) if m.len() == 1 => m.get("Ref"),
        _ => None,
    }) {
        return Some(id.clone());
    }
    match tagged(v, "!GetAtt")? {
        Value::String(s) => s.split('.').next().map(str::to_owned),
        Value::Sequence(parts) => parts.first()?.as_str().map(str::to_owned),
        _ => None,
    }
}

impl StackSpec {
    /// The stack of the template paved ships.
    pub fn shipped() -> Result<Self, String> {
        Self::from_template(TEMPLATE)
    }

    pub fn from_template(text: &str) -> Result<Self, String> {
        let doc: Value =
            serde_yaml::from_str(text).map_err(|e| format!("the template is not YAML: {e}"))?;
        let parameters = doc.get("Parameters");
        // A number property: a literal, or `!Ref Parameter` with a default.
        let number = |v: &Value| -> Option<u32> {
            let v = match referenced(v) {
                Some(p) => parameters?.get(p.as_str())?.get("Default")?,
                None => v,
            };
            v.as_u64()
                .or_else(|| v.as_str()?.parse().ok())
                .and_then(|n| u32::try_from(n).ok())
        };
        let resources = doc
            .get("Resources")
            .and_then(Value::as_mapping)
            .ok_or("the template has no Resources")?;
        let mut table = None;
        let mut queues = Vec::new();
        let mut state_machine = None;
        for (id, resource) in resources {
            let id = id
                .as_str()
                .ok_or("a resource id is not a string")?
                .to_owned();
            let props = resource.get("Properties").cloned().unwrap_or(Value::Null);
            match resource.get("Type").and_then(Value::as_str) {
                Some("AWS::DynamoDB::Table") => {
                    if table.is_some() {
                        return Err("the template has more than one table".into());
                    }
                    let pairs =
                        |list: &str, a: &str, b: &str| -> Result<Vec<(String, String)>, String> {
                            props
                                .get(list)
                                .and_then(Value::as_sequence)
                                .ok_or(format!("{id}: no {list}"))?
                                .iter()
                                .map(|e| {
                                    Ok((
                                        e.get(a)
                                            .and_then(Value::as_str)
                                            .ok_or(format!("{id}: {list} without {a}"))?
                                            .to_owned(),
                                        e.get(b)
                                            .and_then(Value::as_str)
                                            .ok_or(format!("{id}: {list} without {b}"))?
                                            .to_owned(),
                                    ))
                                })
                                .collect()
                        };
                    if props.get("GlobalSecondaryIndexes").is_some() {
                        return Err(format!(
                            "{id}: GSIs are not bootstrapped yet; add them to StackSpec"
                        ));
                    }
                    table = Some(TableSpec {
                        attributes: pairs(
                            "AttributeDefinitions",
                            "AttributeName",
                            "AttributeType",
                        )?,
                        key_schema: pairs("KeySchema", "AttributeName", "KeyType")?,
                        ttl_attribute: props
                            .get("TimeToLiveSpecification")
                            .filter(|t| t.get("Enabled").and_then(Value::as_bool) == Some(true))
                            .and_then(|t| t.get("AttributeName")?.as_str())
                            .map(str::to_owned),
                        point_in_time_recovery: props
                            .get("PointInTimeRecoverySpecification")
                            .and_then(|p| p.get("PointInTimeRecoveryEnabled")?.as_bool())
                            .unwrap_or(false),
                        logical_id: id,
                    });
                }
                Some("AWS::SQS::Queue") => {
                    let redrive =
                        match props.get("RedrivePolicy") {
                            None => None,
                            Some(r) => Some((
                                r.get("deadLetterTargetArn").and_then(referenced).ok_or(
                                    format!("{id}: the redrive target is not a queue of the stack"),
                                )?,
                                r.get("maxReceiveCount")
                                    .and_then(number)
                                    .ok_or(format!("{id}: no maxReceiveCount"))?,
                            )),
                        };
                    queues.push(QueueSpec {
                        visibility_timeout: props.get("VisibilityTimeout").and_then(number),
                        message_retention: props.get("MessageRetentionPeriod").and_then(number),
                        redrive,
                        logical_id: id,
                    });
                }
                Some("AWS::Serverless::StateMachine") => {
                    if state_machine.is_some() {
                        return Err("the template has more than one state machine".into());
                    }
                    let mut substitutions = BTreeMap::new();
                    if let Some(m) = props
                        .get("DefinitionSubstitutions")
                        .and_then(Value::as_mapping)
                    {
                        for (k, v) in m {
                            let name = k
                                .as_str()
                                .ok_or(format!("{id}: a substitution name is not a string"))?;
                            let target = referenced(v)
                                .ok_or(format!("{id}: substitution {name} is not a reference"))?;
                            substitutions.insert(name.to_owned(), target);
                        }
                    }
                    state_machine = Some(StateMachineSpec {
                        definition_uri: props
                            .get("DefinitionUri")
                            .and_then(Value::as_str)
                            .ok_or(format!("{id}: no DefinitionUri"))?
                            .to_owned(),
                        substitutions,
                        logical_id: id,
                    });
                }
                _ => {}
            }
        }
        // Dead-letter queues (the targets of a redrive) come first.
        queues.sort_by_key(|q| q.redrive.is_some());
        let spec = Self {
            table: table.ok_or("the template has no DynamoDB table")?,
            state_machine: state_machine.ok_or("the template has no state machine")?,
            queues,
        };
        for q in &spec.queues {
            if let Some((dlq, _)) = &q.redrive
                && !spec.queues.iter().any(|d| &d.logical_id == dlq)
            {
                return Err(format!(
                    "{}: the dead-letter queue {dlq} is not in the template",
                    q.logical_id
                ));
            }
        }
        for (name, target) in &spec.state_machine.substitutions {
            if !spec.queues.iter().any(|q| &q.logical_id == target) {
                return Err(format!(
                    "substitution {name} refers to {target}, which is not a queue"
                ));
            }
        }
        Ok(spec)
    }

    /// The definition with its substitutions replaced by `urls` (logical id → queue URL).
    pub fn definition(&self, urls: &BTreeMap<String, String>) -> Result<String, String> {
        if self.state_machine.definition_uri != "statemachines/provision.asl.json" {
            return Err(format!(
                "the state machine's definition is {}; paved embeds statemachines/provision.asl.json",
                self.state_machine.definition_uri
            ));
        }
        let mut text = paved_core::tasks::PROVISION_STATE_MACHINE.to_owned();
        for (name, target) in &self.state_machine.substitutions {
            let url = urls
                .get(target)
                .ok_or(format!("no URL for {target} (substitution {name})"))?;
            text = text.replace(&format!("${{{name}}}"), url);
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_template_describes_the_stack() {
        let spec = StackSpec::shipped().expect("the template parses");
        assert_eq!(spec.table.logical_id, "Table");
        assert_eq!(
            spec.table.key_schema,
            [("pk".into(), "HASH".into()), ("sk".into(), "RANGE".into())]
        );
        assert_eq!(spec.table.ttl_attribute.as_deref(), Some("expiration"));
        assert!(spec.table.point_in_time_recovery);
        let task = spec
            .queues
            .iter()
            .find(|q| q.logical_id == "TaskQueue")
            .expect("task queue");
        assert_eq!(task.redrive, Some(("TaskDeadLetterQueue".into(), 5)));
        assert_eq!(task.visibility_timeout, Some(360));
        let first_with_redrive = spec.queues.iter().position(|q| q.redrive.is_some());
        let last_without = spec.queues.iter().rposition(|q| q.redrive.is_none());
        assert!(
            last_without < first_with_redrive,
            "dead-letter queues first"
        );
        assert_eq!(
            spec.state_machine
                .substitutions
                .get("TaskQueueUrl")
                .map(String::as_str),
            Some("TaskQueue")
        );
        let urls = BTreeMap::from([
            ("TaskQueue".to_owned(), "https://q/tasks".to_owned()),
            ("NotificationQueue".to_owned(), "https://q/notes".to_owned()),
        ]);
        let definition = spec.definition(&urls).expect("substituted");
        assert!(definition.contains("https://q/tasks") && !definition.contains("${"));
    }

    /// Every IAM statement of `resource` (a function's `Policies`, a role's), flattened.
    fn statements(resource: &Value) -> Vec<&Value> {
        let mut out = Vec::new();
        let props = &resource["Properties"];
        for policies in [&props["Policies"], &props["PolicyDocument"]] {
            let list = match policies {
                Value::Sequence(l) => l.iter().collect(),
                Value::Mapping(_) => vec![policies],
                _ => vec![],
            };
            for policy in list {
                if let Some(statements) = policy["Statement"].as_sequence() {
                    out.extend(statements);
                }
            }
        }
        out
    }

    fn strings(v: &Value) -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Sequence(l) => l.iter().flat_map(strings).collect(),
            Value::Tagged(t) => strings(&t.value),
            _ => vec![],
        }
    }

    #[test]
    fn only_the_worker_may_use_secrets_manager_and_only_under_its_stacks_prefix() {
        let doc: Value = serde_yaml::from_str(TEMPLATE).expect("template");
        let resources = doc["Resources"].as_mapping().expect("resources");
        let mut granted = Vec::new();
        for (id, resource) in resources {
            let id = id.as_str().expect("id");
            for statement in statements(resource) {
                let actions = strings(&statement["Action"]);
                let secrets: Vec<&String> = actions
                    .iter()
                    .filter(|a| a.starts_with("secretsmanager:") || a.as_str() == "*")
                    .collect();
                if secrets.is_empty() {
                    continue;
                }
                assert_eq!(statement["Effect"], "Allow", "{id}");
                granted.push(id.to_owned());
                assert_eq!(
                    actions,
                    [
                        "secretsmanager:CreateSecret",
                        "secretsmanager:TagResource",
                        "secretsmanager:GetSecretValue",
                        "secretsmanager:DescribeSecret",
                        "secretsmanager:DeleteSecret",
                    ],
                    "{id}: write, read back and delete, nothing else"
                );
                assert_eq!(
                    strings(&statement["Resource"]),
                    [
                        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:paved/${AWS::StackName}/*"
                    ],
                    "{id}: this stack's prefix only"
                );
            }
        }
        assert_eq!(granted, ["ProvisionWorkerFunction"]);
        let worker =
            &resources["ProvisionWorkerFunction"]["Properties"]["Environment"]["Variables"];
        assert_eq!(
            strings(&worker["PAVED_SECRET_PREFIX"]),
            ["paved/${AWS::StackName}"],
            "the worker writes where its policy allows"
        );
        assert!(matches!(
            worker["PAVED_SECRET_RECOVERY_DAYS"],
            Value::Tagged(_) | Value::String(_)
        ));
    }

    #[test]
    fn no_function_has_a_managed_secrets_manager_policy() {
        let doc: Value = serde_yaml::from_str(TEMPLATE).expect("template");
        for (id, resource) in doc["Resources"].as_mapping().expect("resources") {
            let policies = &resource["Properties"]["Policies"];
            let names: Vec<String> = match policies {
                // SAM policy templates (`AWSSecretsManagerGetSecretValuePolicy: ...`) and
                // managed policies by name or ARN (`SecretsManagerReadWrite`).
                Value::Sequence(list) => list
                    .iter()
                    .flat_map(|p| match p {
                        Value::Mapping(m) => m
                            .keys()
                            .filter_map(|k| k.as_str().map(str::to_owned))
                            .collect(),
                        other => strings(other),
                    })
                    .collect(),
                other => strings(other),
            };
            assert!(
                !names.iter().any(|n| n.contains("SecretsManager")),
                "{id:?}: {names:?}"
            );
        }
    }

    #[test]
    fn names_are_kebab_case_under_the_prefix() {
        assert_eq!(
            physical_name("paved", "TaskDeadLetterQueue"),
            "paved-task-dead-letter-queue"
        );
        assert_eq!(physical_name("p-1", "Table"), "p-1-table");
    }

    #[test]
    fn a_broken_template_is_refused_with_the_reason() {
        let no_dlq = "Resources:\n  T: {Type: 'AWS::DynamoDB::Table', Properties: {AttributeDefinitions: [{AttributeName: pk, AttributeType: S}], KeySchema: [{AttributeName: pk, KeyType: HASH}]}}\n  Q: {Type: 'AWS::SQS::Queue', Properties: {RedrivePolicy: {deadLetterTargetArn: !GetAtt Gone.Arn, maxReceiveCount: 3}}}\n  M: {Type: 'AWS::Serverless::StateMachine', Properties: {DefinitionUri: statemachines/provision.asl.json}}\n";
        let err = StackSpec::from_template(no_dlq).expect_err("refused");
        assert!(err.contains("Gone"), "{err}");
    }
}
