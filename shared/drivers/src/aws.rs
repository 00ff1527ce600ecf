//! The `sqs-queue` and `dynamodb-table` drivers, on the AWS SDK. They run against AWS, or
//! against an emulator (moto) through `AWS_ENDPOINT_URL`, with the same code.
//!
//! Names are deterministic (`paved-<environment>-<name>`), so a retried step finds the queue
//! or table an earlier attempt made. Provider errors map to stable codes: throttling and
//! transport trouble are `Retryable.*`, refusals `NonRetryable.AwsRefused`.
//!
//! Ownership ([`crate::ownership`]): queues and tables are created with the tag
//! `paved:request-id` in the same call, and are adopted, undone or deleted only by the
//! request that tag names.

use std::collections::HashMap;
use std::fmt::Debug;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    ProvisionedThroughput, ScalarAttributeType, TableStatus,
};
use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_runtime_api::client::result::SdkError;
use paved_core::provisioning::{Driver, DriverError, PlannedStep, Planner, ResourceSpec};
use serde_json::{Value, json};

use crate::ownership::{Holder, TAG};

pub const SQS_RESOURCE_TYPE: &str = "sqs-queue";
pub const DYNAMODB_RESOURCE_TYPE: &str = "dynamodb-table";

/// `paved-<environment>-<name>`, within AWS's name rules (letters, digits, `-`, `_`).
fn aws_name(spec: &ResourceSpec) -> String {
    format!("paved-{}-{}", spec.environment, spec.name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

const THROTTLING: [&str; 6] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "LimitExceededException",
];

/// Maps an SDK error to a driver error with a stable code.
fn classify<E, R>(what: &str, e: SdkError<E, R>) -> DriverError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug,
{
    match &e {
        SdkError::ServiceError(service) => {
            let err = service.err();
            let code = err.code().unwrap_or("Unknown");
            let message = format!("{what}: {code}: {}", err.message().unwrap_or_default());
            if THROTTLING.contains(&code)
                || code.starts_with("InternalFailure")
                || code == "ServiceUnavailable"
            {
                DriverError::Retryable {
                    code: "Retryable.Throttled",
                    message,
                }
            } else {
                DriverError::NonRetryable {
                    code: "NonRetryable.AwsRefused",
                    message,
                }
            }
        }
        // Timeouts, connection failures, unparseable answers: the provider may be back soon.
        _ => DriverError::Retryable {
            code: "Retryable.AwsUnavailable",
            message: format!(
                "{what}: {}",
                aws_smithy_types::error::display::DisplayErrorContext(&e)
            ),
        },
    }
}

fn service_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

fn param_u64(spec: &ResourceSpec, name: &str, default: u64) -> u64 {
    spec.parameters
        .get(name)
        .and_then(Value::as_u64)
        .unwrap_or(default)
}

/// A queue and its dead-letter queue, with a redrive policy between them.
pub struct SqsQueueDriver {
    client: aws_sdk_sqs::Client,
}

impl SqsQueueDriver {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_sqs::Client::new(config),
        }
    }

    fn names(spec: &ResourceSpec) -> (String, String) {
        let fifo = spec
            .parameters
            .get("fifo")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let suffix = if fifo { ".fifo" } else { "" };
        let base = aws_name(spec);
        (format!("{base}{suffix}"), format!("{base}-dlq{suffix}"))
    }

    async fn url_of(&self, name: &str) -> Result<Option<String>, DriverError> {
        match self.client.get_queue_url().queue_name(name).send().await {
            Ok(r) => Ok(r.queue_url),
            Err(e) if service_code(&e).is_some_and(|c| c.contains("NonExistentQueue")) => Ok(None),
            Err(e) => Err(classify("GetQueueUrl", e)),
        }
    }

    async fn arn_of(&self, url: &str) -> Result<String, DriverError> {
        let attrs = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| classify("GetQueueAttributes", e))?;
        attrs
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .ok_or_else(|| DriverError::Retryable {
                code: "Retryable.AwsUnavailable",
                message: "the queue has no ARN yet".into(),
            })
    }

    /// Who made the queue at `url`, by its `paved:request-id` tag.
    async fn holder(&self, url: &str, request_id: &str) -> Result<Holder, DriverError> {
        match self.client.list_queue_tags().queue_url(url).send().await {
            Ok(r) => Ok(Holder::of(
                Some(r.tags.and_then(|mut t| t.remove(TAG))),
                request_id,
            )),
            Err(e) if service_code(&e).is_some_and(|c| c.contains("NonExistentQueue")) => {
                Ok(Holder::Absent)
            }
            Err(e) => Err(classify("ListQueueTags", e)),
        }
    }

    async fn create(
        &self,
        spec: &ResourceSpec,
        name: &str,
        attributes: HashMap<QueueAttributeName, String>,
    ) -> Result<String, DriverError> {
        let what = format!("the SQS queue {name}");
        if let Some(url) = self.url_of(name).await? {
            // Ours from an earlier attempt (take it as it is), or refused.
            if self
                .holder(&url, &spec.request_id)
                .await?
                .for_create(&what)?
            {
                return Ok(url);
            }
        }
        let mut request = self
            .client
            .create_queue()
            .queue_name(name)
            .tags(TAG, &spec.request_id);
        for (k, v) in attributes {
            request = request.attributes(k, v);
        }
        let url = match request.send().await {
            Ok(r) => r.queue_url.ok_or_else(|| DriverError::Retryable {
                code: "Retryable.AwsUnavailable",
                message: "CreateQueue returned no URL".into(),
            })?,
            // Made meanwhile, with other attributes: whose it is decides below.
            Err(e)
                if service_code(&e).is_some_and(|c| {
                    c.contains("QueueAlreadyExists") || c.contains("QueueNameExists")
                }) =>
            {
                self.url_of(name)
                    .await?
                    .ok_or_else(|| DriverError::Retryable {
                        code: "Retryable.AwsUnavailable",
                        message: format!("{name} exists but has no URL yet"),
                    })?
            }
            Err(e) => Err(classify("CreateQueue", e))?,
        };
        // CreateQueue answers an existing queue with the same attributes with its URL, tags
        // or not: only the tag says whose it is.
        if self
            .holder(&url, &spec.request_id)
            .await?
            .for_create(&what)?
        {
            Ok(url)
        } else {
            Err(DriverError::Retryable {
                code: "Retryable.AwsUnavailable",
                message: format!("{name} was created but is not visible yet"),
            })
        }
    }

    async fn remove(&self, spec: &ResourceSpec, name: &str) -> Result<(), DriverError> {
        let Some(url) = self.url_of(name).await? else {
            return Ok(());
        };
        let what = format!("the SQS queue {name}");
        if !self
            .holder(&url, &spec.request_id)
            .await?
            .for_removal(&what)?
        {
            return Ok(());
        }
        match self.client.delete_queue().queue_url(url).send().await {
            Ok(_) => Ok(()),
            Err(e) if service_code(&e).is_some_and(|c| c.contains("NonExistentQueue")) => Ok(()),
            Err(e) => Err(classify("DeleteQueue", e)),
        }
    }
}

/// The queues a request would create; no client needed.
pub struct SqsQueuePlanner;

impl Planner for SqsQueuePlanner {
    fn resource_type(&self) -> &'static str {
        SQS_RESOURCE_TYPE
    }

    fn plan(&self, spec: &ResourceSpec) -> Result<Vec<PlannedStep>, DriverError> {
        let (queue, dlq) = SqsQueueDriver::names(spec);
        Ok(vec![
            PlannedStep {
                step: "dlq".into(),
                action: format!("create the SQS queue {dlq} (14 days retention)"),
            },
            PlannedStep {
                step: "queue".into(),
                action: format!(
                    "create the SQS queue {queue}, redriving to {dlq} after {} receives",
                    param_u64(spec, "max_receive_count", 5)
                ),
            },
        ])
    }
}

impl Planner for SqsQueueDriver {
    fn resource_type(&self) -> &'static str {
        SqsQueuePlanner.resource_type()
    }

    fn plan(&self, spec: &ResourceSpec) -> Result<Vec<PlannedStep>, DriverError> {
        SqsQueuePlanner.plan(spec)
    }
}

#[async_trait]
impl Driver for SqsQueueDriver {
    async fn apply(&self, spec: &ResourceSpec, step: &str) -> Result<Value, DriverError> {
        let (queue, dlq) = Self::names(spec);
        let fifo = queue.ends_with(".fifo");
        let mut base = HashMap::new();
        if fifo {
            base.insert(QueueAttributeName::FifoQueue, "true".to_owned());
        }
        match step {
            "dlq" => {
                let mut attrs = base;
                attrs.insert(
                    QueueAttributeName::MessageRetentionPeriod,
                    (14 * 86_400).to_string(),
                );
                let url = self.create(spec, &dlq, attrs).await?;
                let arn = self.arn_of(&url).await?;
                Ok(json!({"deadLetterQueueUrl": url, "deadLetterQueueArn": arn}))
            }
            "queue" => {
                let dlq_url = self.url_of(&dlq).await?.ok_or_else(|| DriverError::NonRetryable {
                    code: "NonRetryable.MissingDependency",
                    message: format!("the dead-letter queue {dlq} does not exist; the dlq step must run first"),
                })?;
                let dlq_arn = self.arn_of(&dlq_url).await?;
                let mut attrs = base;
                attrs.insert(
                    QueueAttributeName::MessageRetentionPeriod,
                    (param_u64(spec, "retention_days", 4) * 86_400).to_string(),
                );
                attrs.insert(
                    QueueAttributeName::VisibilityTimeout,
                    param_u64(spec, "visibility_timeout_seconds", 30).to_string(),
                );
                attrs.insert(
                    QueueAttributeName::RedrivePolicy,
                    json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": param_u64(spec, "max_receive_count", 5)}).to_string(),
                );
                let url = self.create(spec, &queue, attrs).await?;
                let arn = self.arn_of(&url).await?;
                Ok(json!({"queueUrl": url, "queueArn": arn, "deadLetterQueueUrl": dlq_url}))
            }
            other => Err(DriverError::NonRetryable {
                code: "NonRetryable.UnknownStep",
                message: format!(
                    "{SQS_RESOURCE_TYPE} has no step '{other}'; its steps are dlq, queue"
                ),
            }),
        }
    }

    async fn undo(&self, spec: &ResourceSpec, step: &str) -> Result<(), DriverError> {
        let (queue, dlq) = Self::names(spec);
        match step {
            "queue" => self.remove(spec, &queue).await,
            "dlq" => self.remove(spec, &dlq).await,
            _ => Ok(()),
        }
    }

    async fn status(&self, spec: &ResourceSpec) -> Result<Option<Value>, DriverError> {
        let (queue, _) = Self::names(spec);
        let Some(url) = self.url_of(&queue).await? else {
            return Ok(None);
        };
        let ours = self.holder(&url, &spec.request_id).await? == Holder::Ours;
        Ok(ours.then(|| json!({"queueUrl": url})))
    }

    async fn delete(&self, spec: &ResourceSpec) -> Result<(), DriverError> {
        self.undo(spec, "queue").await?;
        self.undo(spec, "dlq").await
    }
}

/// A table with a string partition key, an optional string sort key, and point-in-time
/// recovery on.
pub struct DynamoTableDriver {
    client: aws_sdk_dynamodb::Client,
}

impl DynamoTableDriver {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self {
            client: aws_sdk_dynamodb::Client::new(config),
        }
    }

    async fn describe(
        &self,
        name: &str,
    ) -> Result<Option<aws_sdk_dynamodb::types::TableDescription>, DriverError> {
        match self.client.describe_table().table_name(name).send().await {
            Ok(r) => Ok(r.table),
            Err(e) if service_code(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(classify("DescribeTable", e)),
        }
    }

    /// Who made the table, by its `paved:request-id` tag.
    async fn holder(
        &self,
        table: Option<&aws_sdk_dynamodb::types::TableDescription>,
        request_id: &str,
    ) -> Result<Holder, DriverError> {
        let Some(arn) = table.and_then(|t| t.table_arn()) else {
            return Ok(if table.is_some() {
                Holder::Other(None)
            } else {
                Holder::Absent
            });
        };
        let mut tag = None;
        let mut next: Option<String> = None;
        loop {
            let page = match self
                .client
                .list_tags_of_resource()
                .resource_arn(arn)
                .set_next_token(next.take())
                .send()
                .await
            {
                Ok(page) => page,
                Err(e) if service_code(&e) == Some("ResourceNotFoundException") => {
                    return Ok(Holder::Absent);
                }
                Err(e) => return Err(classify("ListTagsOfResource", e)),
            };
            if let Some(t) = page.tags().iter().find(|t| t.key() == TAG) {
                tag = Some(t.value().to_owned());
            }
            match page.next_token {
                Some(token) if tag.is_none() => next = Some(token),
                _ => break,
            }
        }
        Ok(Holder::of(Some(tag), request_id))
    }

    fn key(
        name: &str,
        key_type: KeyType,
    ) -> Result<(KeySchemaElement, AttributeDefinition), DriverError> {
        let invalid = |e: aws_sdk_dynamodb::error::BuildError| DriverError::NonRetryable {
            code: "NonRetryable.InvalidParameters",
            message: e.to_string(),
        };
        Ok((
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(invalid)?,
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(invalid)?,
        ))
    }
}

/// The table a request would create; no client needed.
pub struct DynamoTablePlanner;

impl Planner for DynamoTablePlanner {
    fn resource_type(&self) -> &'static str {
        DYNAMODB_RESOURCE_TYPE
    }

    fn plan(&self, spec: &ResourceSpec) -> Result<Vec<PlannedStep>, DriverError> {
        Ok(vec![PlannedStep {
            step: "table".into(),
            action: format!(
                "create the DynamoDB table {} with point-in-time recovery",
                aws_name(spec)
            ),
        }])
    }
}

impl Planner for DynamoTableDriver {
    fn resource_type(&self) -> &'static str {
        DynamoTablePlanner.resource_type()
    }

    fn plan(&self, spec: &ResourceSpec) -> Result<Vec<PlannedStep>, DriverError> {
        DynamoTablePlanner.plan(spec)
    }
}

#[async_trait]
impl Driver for DynamoTableDriver {
    async fn apply(&self, spec: &ResourceSpec, step: &str) -> Result<Value, DriverError> {
        if step != "table" {
            return Err(DriverError::NonRetryable {
                code: "NonRetryable.UnknownStep",
                message: format!(
                    "{DYNAMODB_RESOURCE_TYPE} has no step '{step}'; its step is table"
                ),
            });
        }
        let name = aws_name(spec);
        let partition = spec
            .parameters
            .get("partition_key")
            .and_then(Value::as_str)
            .ok_or_else(|| DriverError::NonRetryable {
                code: "NonRetryable.InvalidParameters",
                message: "partition_key is required".into(),
            })?;
        let what = format!("the DynamoDB table {name}");
        let existing = self.describe(&name).await?;
        let ours = self
            .holder(existing.as_ref(), &spec.request_id)
            .await?
            .for_create(&what)?;
        if !ours {
            let (pk_schema, pk_attr) = Self::key(partition, KeyType::Hash)?;
            let tag = aws_sdk_dynamodb::types::Tag::builder()
                .key(TAG)
                .value(&spec.request_id)
                .build()
                .map_err(|e| DriverError::NonRetryable {
                    code: "NonRetryable.InvalidParameters",
                    message: e.to_string(),
                })?;
            let mut request = self
                .client
                .create_table()
                .table_name(&name)
                .tags(tag)
                .key_schema(pk_schema)
                .attribute_definitions(pk_attr);
            if let Some(sort) = spec.parameters.get("sort_key").and_then(Value::as_str) {
                let (sk_schema, sk_attr) = Self::key(sort, KeyType::Range)?;
                request = request.key_schema(sk_schema).attribute_definitions(sk_attr);
            }
            request =
                if spec.parameters.get("billing").and_then(Value::as_str) == Some("PROVISIONED") {
                    let throughput = ProvisionedThroughput::builder()
                        .read_capacity_units(
                            i64::try_from(param_u64(spec, "read_capacity", 5)).unwrap_or(5),
                        )
                        .write_capacity_units(
                            i64::try_from(param_u64(spec, "write_capacity", 5)).unwrap_or(5),
                        )
                        .build()
                        .map_err(|e| DriverError::NonRetryable {
                            code: "NonRetryable.InvalidParameters",
                            message: e.to_string(),
                        })?;
                    request
                        .billing_mode(BillingMode::Provisioned)
                        .provisioned_throughput(throughput)
                } else {
                    request.billing_mode(BillingMode::PayPerRequest)
                };
            match request.send().await {
                Ok(_) => {}
                // Made meanwhile: whose it is decides below.
                Err(e) if service_code(&e) == Some("ResourceInUseException") => {}
                Err(e) => return Err(classify("CreateTable", e)),
            }
        }
        let table = self
            .describe(&name)
            .await?
            .ok_or_else(|| DriverError::Retryable {
                code: "Retryable.InProgress",
                message: format!("{name} is not visible yet"),
            })?;
        if !ours {
            self.holder(Some(&table), &spec.request_id)
                .await?
                .for_create(&what)?;
        }
        if table.table_status != Some(TableStatus::Active) {
            // CREATING on AWS for a few seconds: Step Functions retries with backoff.
            return Err(DriverError::Retryable {
                code: "Retryable.InProgress",
                message: format!("{name} is {:?}, not ACTIVE yet", table.table_status),
            });
        }
        self.client
            .update_continuous_backups()
            .table_name(&name)
            .point_in_time_recovery_specification(
                PointInTimeRecoverySpecification::builder()
                    .point_in_time_recovery_enabled(true)
                    .build()
                    .map_err(|e| DriverError::NonRetryable {
                        code: "NonRetryable.InvalidParameters",
                        message: e.to_string(),
                    })?,
            )
            .send()
            .await
            .map_err(|e| classify("UpdateContinuousBackups", e))?;
        Ok(json!({"tableName": name, "tableArn": table.table_arn, "pointInTimeRecovery": true}))
    }

    async fn undo(&self, spec: &ResourceSpec, _step: &str) -> Result<(), DriverError> {
        let name = aws_name(spec);
        let table = self.describe(&name).await?;
        if !self
            .holder(table.as_ref(), &spec.request_id)
            .await?
            .for_removal(&format!("the DynamoDB table {name}"))?
        {
            return Ok(());
        }
        match self.client.delete_table().table_name(&name).send().await {
            Ok(_) => Ok(()),
            Err(e) if service_code(&e) == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(classify("DeleteTable", e)),
        }
    }

    async fn status(&self, spec: &ResourceSpec) -> Result<Option<Value>, DriverError> {
        let table = self.describe(&aws_name(spec)).await?;
        if self.holder(table.as_ref(), &spec.request_id).await? != Holder::Ours {
            return Ok(None);
        }
        Ok(table.map(|t| json!({"tableName": t.table_name, "status": t.table_status.map(|s| s.as_str().to_owned())})))
    }

    async fn delete(&self, spec: &ResourceSpec) -> Result<(), DriverError> {
        self.undo(spec, "table").await
    }
}
