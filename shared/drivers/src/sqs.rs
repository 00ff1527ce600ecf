//! The `sqs-queue` driver, on the AWS SDK: a queue and its dead-letter queue with a redrive
//! policy, against AWS or an emulator (moto) through `AWS_ENDPOINT_URL`, with the same code.
//!
//! Names are deterministic (`paved-<environment>-<name>`), so a retried step finds the queue an
//! earlier attempt made. Ownership ([`crate::ownership`]): queues are created with the tag
//! `paved:request-id` in the same call, and are adopted, undone or deleted only by the request
//! that tag names.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use paved_core::provisioning::{Driver, DriverError, PlannedStep, Planner, ResourceSpec};
use serde_json::{Value, json};

use crate::ownership::{Holder, TAG};
use crate::sdk::{aws_name, classify, param_u64, service_code};

pub const SQS_RESOURCE_TYPE: &str = "sqs-queue";

/// A queue and its dead-letter queue, with a redrive policy between them.
#[derive(Debug)]
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
#[derive(Debug)]
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
