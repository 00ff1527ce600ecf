//! `paved aws bootstrap`: the stack's table, queues and state machine on an AWS emulator,
//! created from [`StackSpec`] (the SAM template) and named with [`physical_name`]. Running it
//! twice changes nothing: existing resources are kept, and the state machine's definition is
//! brought up to date. A resource that is missing is created, so running it again repairs a
//! stack that lost one: moto keeps two Step Functions backends and switches to the other when
//! execution is turned on (`/moto-api/config`), so turn that on before bootstrapping.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::json;

use crate::errors::code;
use crate::stack::{StackSpec, TableSpec, physical_name};

/// What a bootstrap created: the values `PAVED_BACKEND=aws` needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    pub table: String,
    /// Logical id → queue URL.
    pub queue_urls: BTreeMap<String, String>,
    pub state_machine_arn: String,
    /// Where the worker keeps generated credentials in Secrets Manager: `paved/<prefix>`, as
    /// the template sets `PAVED_SECRET_PREFIX` to `paved/<stack name>`.
    pub secret_prefix: String,
}

impl Stack {
    pub fn queue(&self, logical_id: &str) -> &str {
        self.queue_urls.get(logical_id).map_or("", String::as_str)
    }

    /// The environment of a function on this stack, as the template sets it.
    pub fn environment(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PAVED_BACKEND", "aws".into()),
            ("PAVED_TABLE", self.table.clone()),
            ("PAVED_TASK_QUEUE_URL", self.queue("TaskQueue").into()),
            (
                "PAVED_TASK_DEAD_LETTER_QUEUE_URL",
                self.queue("TaskDeadLetterQueue").into(),
            ),
            (
                "PAVED_NOTIFICATION_QUEUE_URL",
                self.queue("NotificationQueue").into(),
            ),
            (
                "PAVED_NOTIFICATION_DEAD_LETTER_QUEUE_URL",
                self.queue("NotificationDeadLetterQueue").into(),
            ),
            ("PAVED_STATE_MACHINE_ARN", self.state_machine_arn.clone()),
            ("PAVED_SECRET_PREFIX", self.secret_prefix.clone()),
        ]
    }
}

fn failed(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

fn sdk_failed<E, R>(
    what: &str,
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> String
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    failed(
        what,
        aws_smithy_types::error::display::DisplayErrorContext(e),
    )
}

/// Creates (or finds) every stateful resource of `spec` under `prefix`.
pub async fn bootstrap(
    config: &aws_config::SdkConfig,
    spec: &StackSpec,
    prefix: &str,
) -> Result<Stack, String> {
    let table = create_table(
        config,
        &spec.table,
        &physical_name(prefix, &spec.table.logical_id),
    )
    .await?;
    let sqs = aws_sdk_sqs::Client::new(config);
    let mut queue_urls = BTreeMap::new();
    let mut queue_arns: BTreeMap<String, String> = BTreeMap::new();
    for q in &spec.queues {
        let name = physical_name(prefix, &q.logical_id);
        let mut request = sqs.create_queue().queue_name(&name);
        if let Some(v) = q.visibility_timeout {
            request = request.attributes(QueueAttributeName::VisibilityTimeout, v.to_string());
        }
        if let Some(v) = q.message_retention {
            request = request.attributes(QueueAttributeName::MessageRetentionPeriod, v.to_string());
        }
        if let Some((dlq, max)) = &q.redrive {
            let arn = queue_arns
                .get(dlq)
                .ok_or(format!("{}: {dlq} was not created first", q.logical_id))?;
            let policy = json!({"deadLetterTargetArn": arn, "maxReceiveCount": max.to_string()});
            request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = request
            .send()
            .await
            .map_err(|e| sdk_failed(&format!("creating the queue {name}"), &e))?
            .queue_url
            .ok_or(format!("CreateQueue {name} returned no URL"))?;
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| sdk_failed(&format!("reading the ARN of {name}"), &e))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or(format!("no ARN for the queue {name}"))?;
        queue_arns.insert(q.logical_id.clone(), arn);
        queue_urls.insert(q.logical_id.clone(), url);
    }
    let definition = spec.definition(&queue_urls)?;
    let state_machine_arn = create_state_machine(
        config,
        &physical_name(prefix, &spec.state_machine.logical_id),
        &definition,
    )
    .await?;
    Ok(Stack {
        table,
        queue_urls,
        state_machine_arn,
        secret_prefix: format!("paved/{prefix}"),
    })
}

/// Creates (or keeps) the table `name` as `t` describes it, with its TTL and PITR; returns
/// the name.
pub async fn create_table(
    config: &aws_config::SdkConfig,
    t: &TableSpec,
    name: &str,
) -> Result<String, String> {
    let name = name.to_owned();
    let client = aws_sdk_dynamodb::Client::new(config);
    let mut request = client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest);
    for (attribute, kind) in &t.attributes {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()
                .map_err(|e| failed("a table attribute", e))?,
        );
    }
    for (attribute, kind) in &t.key_schema {
        request = request.key_schema(
            KeySchemaElement::builder()
                .attribute_name(attribute)
                .key_type(KeyType::from(kind.as_str()))
                .build()
                .map_err(|e| failed("a table key", e))?,
        );
    }
    match request.send().await {
        Ok(_) => {}
        Err(e) if code(&e) == Some("ResourceInUseException") => {}
        Err(e) => return Err(sdk_failed(&format!("creating the table {name}"), &e)),
    }
    if let Some(attribute) = &t.ttl_attribute {
        let ttl = TimeToLiveSpecification::builder()
            .attribute_name(attribute)
            .enabled(true)
            .build()
            .map_err(|e| failed("the TTL specification", e))?;
        match client
            .update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(ttl)
            .send()
            .await
        {
            Ok(_) => {}
            // Enabled by an earlier bootstrap.
            Err(e) if code(&e) == Some("ValidationException") => {}
            Err(e) => return Err(sdk_failed(&format!("enabling TTL on {name}"), &e)),
        }
    }
    if t.point_in_time_recovery {
        client
            .update_continuous_backups()
            .table_name(&name)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .build()
                    .map_err(|e| failed("the PITR specification", e))?,
            )
            .send()
            .await
            .map_err(|e| sdk_failed(&format!("enabling PITR on {name}"), &e))?;
    }
    Ok(name)
}

/// Updates the state machine `name`, or creates it when the emulator has none by that name
/// (a fresh one, or one whose Step Functions backend was swapped since).
async fn create_state_machine(
    config: &aws_config::SdkConfig,
    name: &str,
    definition: &str,
) -> Result<String, String> {
    let client = aws_sdk_sfn::Client::new(config);
    if let Some(arn) = find_state_machine(config, name).await? {
        client
            .update_state_machine()
            .state_machine_arn(&arn)
            .definition(definition)
            .send()
            .await
            .map_err(|e| sdk_failed(&format!("updating the state machine {name}"), &e))?;
        return Ok(arn);
    }
    // Emulators accept any role; on AWS the template creates the real one.
    let role = format!("arn:aws:iam::123456789012:role/{name}");
    client
        .create_state_machine()
        .name(name)
        .definition(definition)
        .role_arn(role)
        .send()
        .await
        .map(|o| o.state_machine_arn)
        .map_err(|e| sdk_failed(&format!("creating the state machine {name}"), &e))
}

/// The ARN of the state machine called `name`, if there is one.
pub async fn find_state_machine(
    config: &aws_config::SdkConfig,
    name: &str,
) -> Result<Option<String>, String> {
    let client = aws_sdk_sfn::Client::new(config);
    let mut pages = client.list_state_machines().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_failed("listing state machines", &e))?;
        if let Some(m) = page.state_machines.iter().find(|m| m.name == name) {
            return Ok(Some(m.state_machine_arn.clone()));
        }
    }
    Ok(None)
}
