//! The `sqs-queue` driver, on the AWS SDK: a queue and its dead-letter queue with a redrive
//! policy, against AWS or an emulator (moto) through `AWS_ENDPOINT_URL`, with the same code.
//!
//! Names are deterministic (`paved-<environment>-<name>`), so a retried step finds the queue an
//! earlier attempt made. Ownership ([`crate::ownership`]): queues are created with the tag
//! `paved:request-id` in the same call, and are adopted, undone or deleted only by the request
//! that tag names.
//!
//! Applying both steps again, in plan order, repairs what was changed by hand (the
//! reconciliation loop's `enforce`): a queue that is this request's already gets its
//! provisioned attributes set again (retention, visibility timeout, the redrive policy naming
//! the dead-letter queue's current ARN), and a deleted one is created again under its name.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_sqs::types::QueueAttributeName;
use paved_core::observation::{Found, InventoryPage, Observation};
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

    /// The attributes the dead-letter queue and the queue are provisioned with (the queue's
    /// redrive policy aside: it names the dead-letter queue's ARN).
    fn desired(
        spec: &ResourceSpec,
    ) -> (
        HashMap<QueueAttributeName, String>,
        HashMap<QueueAttributeName, String>,
    ) {
        let (queue, _) = Self::names(spec);
        let mut base = HashMap::new();
        if queue.ends_with(".fifo") {
            base.insert(QueueAttributeName::FifoQueue, "true".to_owned());
        }
        let mut dlq = base.clone();
        dlq.insert(
            QueueAttributeName::MessageRetentionPeriod,
            (14 * 86_400).to_string(),
        );
        let mut main = base;
        main.insert(
            QueueAttributeName::MessageRetentionPeriod,
            (param_u64(spec, "retention_days", 4) * 86_400).to_string(),
        );
        main.insert(
            QueueAttributeName::VisibilityTimeout,
            param_u64(spec, "visibility_timeout_seconds", 30).to_string(),
        );
        (dlq, main)
    }

    /// What exists of the queue and its dead-letter queue, and how they differ from what
    /// `spec` provisions, field by field: existence and paved's tag, retention, visibility,
    /// FIFO, and the redrive policy (its target and receive count). Read-only: per queue one
    /// `GetQueueUrl`, one `ListQueueTags` and one `GetQueueAttributes`.
    async fn observation(&self, spec: &ResourceSpec) -> Result<Observation, DriverError> {
        let (queue, dlq) = Self::names(spec);
        let (dlq_desired, queue_desired) = Self::desired(spec);
        let mut seen = Observation::default();
        let dlq_attrs = self
            .observe_queue(spec, "deadLetterQueue", &dlq, &dlq_desired, &mut seen)
            .await?;
        let Some(attrs) = self
            .observe_queue(spec, "queue", &queue, &queue_desired, &mut seen)
            .await?
        else {
            return Ok(seen);
        };
        seen.exists = true;
        let own_arn = attrs
            .get(&QueueAttributeName::QueueArn)
            .cloned()
            .unwrap_or_default();
        // The dead-letter queue's ARN, from its attributes or, when it is gone, from the
        // queue's own (same account and region, deterministic name).
        let dlq_arn = dlq_attrs
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .unwrap_or_else(|| match own_arn.rsplit_once(':') {
                Some((prefix, _)) => format!("{prefix}:{dlq}"),
                None => dlq.clone(),
            });
        let redrive: Value = attrs
            .get(&QueueAttributeName::RedrivePolicy)
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or(Value::Null);
        seen.compare(
            "queue.RedrivePolicy.deadLetterTargetArn",
            json!(dlq_arn),
            redrive
                .get("deadLetterTargetArn")
                .cloned()
                .unwrap_or(Value::Null),
        );
        let receives = redrive.get("maxReceiveCount").and_then(|v| match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        });
        seen.compare(
            "queue.RedrivePolicy.maxReceiveCount",
            json!(param_u64(spec, "max_receive_count", 5)),
            receives.map_or(Value::Null, Value::from),
        );
        Ok(seen)
    }

    /// One queue: absent, not paved's, or its attributes compared with `desired`.
    async fn observe_queue(
        &self,
        spec: &ResourceSpec,
        label: &str,
        name: &str,
        desired: &HashMap<QueueAttributeName, String>,
        seen: &mut Observation,
    ) -> Result<Option<HashMap<QueueAttributeName, String>>, DriverError> {
        seen.calls += 1;
        let Some(url) = self.url_of(name).await? else {
            seen.compare(label, json!(name), Value::Null);
            return Ok(None);
        };
        seen.calls += 1;
        match self.holder(&url, &spec.request_id).await? {
            Holder::Ours => {}
            Holder::Absent => {
                seen.compare(label, json!(name), Value::Null);
                return Ok(None);
            }
            Holder::Other(tag) => {
                seen.compare(
                    &format!("{label}.tags.{TAG}"),
                    json!(spec.request_id),
                    tag.map_or(Value::Null, Value::String),
                );
                return Ok(None);
            }
        }
        seen.calls += 1;
        let attrs = match self
            .client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
        {
            Ok(r) => r.attributes.unwrap_or_default(),
            Err(e) if service_code(&e).is_some_and(|c| c.contains("NonExistentQueue")) => {
                seen.compare(label, json!(name), Value::Null);
                return Ok(None);
            }
            Err(e) => return Err(classify("GetQueueAttributes", e)),
        };
        let mut names: Vec<&QueueAttributeName> = desired.keys().collect();
        names.sort_by_key(|n| n.as_str());
        for attribute in names {
            seen.compare(
                &format!("{label}.{}", attribute.as_str()),
                json!(desired[attribute]),
                attrs
                    .get(attribute)
                    .map_or(Value::Null, |v| Value::String(v.clone())),
            );
        }
        Ok(Some(attrs))
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
            // Ours from an earlier attempt, or refused. Ours: its attributes may have been
            // edited since, so they are set again.
            if self
                .holder(&url, &spec.request_id)
                .await?
                .for_create(&what)?
            {
                self.set_attributes(&url, attributes).await?;
                return Ok(url);
            }
        }
        let mut request = self
            .client
            .create_queue()
            .queue_name(name)
            .tags(TAG, &spec.request_id);
        for (k, v) in attributes.clone() {
            request = request.attributes(k, v);
        }
        let (url, made) = match request.send().await {
            Ok(r) => (
                r.queue_url.ok_or_else(|| DriverError::Retryable {
                    code: "Retryable.AwsUnavailable",
                    message: "CreateQueue returned no URL".into(),
                })?,
                true,
            ),
            // Made meanwhile, with other attributes: whose it is decides below.
            Err(e)
                if service_code(&e).is_some_and(|c| {
                    c.contains("QueueAlreadyExists") || c.contains("QueueNameExists")
                }) =>
            {
                let url = self
                    .url_of(name)
                    .await?
                    .ok_or_else(|| DriverError::Retryable {
                        code: "Retryable.AwsUnavailable",
                        message: format!("{name} exists but has no URL yet"),
                    })?;
                (url, false)
            }
            // AWS keeps a deleted queue's name for 60 seconds: a queue deleted by hand is
            // re-created by a later attempt.
            Err(e) if service_code(&e).is_some_and(|c| c.contains("QueueDeletedRecently")) => {
                return Err(DriverError::Retryable {
                    code: "Retryable.InProgress",
                    message: format!("{name} was deleted recently; AWS frees its name shortly"),
                });
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
            if !made {
                self.set_attributes(&url, attributes).await?;
            }
            Ok(url)
        } else {
            Err(DriverError::Retryable {
                code: "Retryable.AwsUnavailable",
                message: format!("{name} was created but is not visible yet"),
            })
        }
    }

    /// Sets `attributes` on this request's queue at `url`, repairing hand edits. `FifoQueue`
    /// is left out: it is fixed at creation (and by the name's `.fifo`), and SQS refuses it
    /// here.
    async fn set_attributes(
        &self,
        url: &str,
        mut attributes: HashMap<QueueAttributeName, String>,
    ) -> Result<(), DriverError> {
        attributes.remove(&QueueAttributeName::FifoQueue);
        if attributes.is_empty() {
            return Ok(());
        }
        match self
            .client
            .set_queue_attributes()
            .queue_url(url)
            .set_attributes(Some(attributes))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if service_code(&e).is_some_and(|c| c.contains("NonExistentQueue")) => {
                Err(DriverError::Retryable {
                    code: "Retryable.InProgress",
                    message: format!("the queue at {url} went away while it was being updated"),
                })
            }
            Err(e) => Err(classify("SetQueueAttributes", e)),
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

impl SqsQueueDriver {
    /// A page of the queues named `paved-*` that carry paved's tag: one `ListQueues`, then
    /// one `ListQueueTags` per queue listed.
    async fn inventory_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<InventoryPage, DriverError> {
        let listed = self
            .client
            .list_queues()
            .queue_name_prefix("paved-")
            .max_results(i32::try_from(limit.clamp(1, 1000)).unwrap_or(1000))
            .set_next_token(after.map(str::to_owned))
            .send()
            .await
            .map_err(|e| classify("ListQueues", e))?;
        let mut page = InventoryPage {
            calls: 1,
            next: listed.next_token.clone(),
            ..InventoryPage::default()
        };
        for url in listed.queue_urls() {
            page.calls += 1;
            let tags = match self.client.list_queue_tags().queue_url(url).send().await {
                Ok(r) => r.tags.unwrap_or_default(),
                // Deleted between the listing and now.
                Err(e) if service_code(&e).is_some_and(|c| c.contains("NonExistentQueue")) => {
                    continue;
                }
                Err(e) => return Err(classify("ListQueueTags", e)),
            };
            if let (Some(id), Some(name)) = (tags.get(TAG), url.rsplit('/').next()) {
                page.found.push(Found {
                    kind: "queue".into(),
                    name: name.to_owned(),
                    request_id: Some(id.clone()),
                });
            }
        }
        Ok(page)
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
        let (dlq_attrs, queue_attrs) = Self::desired(spec);
        match step {
            "dlq" => {
                let url = self.create(spec, &dlq, dlq_attrs).await?;
                let arn = self.arn_of(&url).await?;
                Ok(json!({"deadLetterQueueUrl": url, "deadLetterQueueArn": arn}))
            }
            "queue" => {
                let dlq_url = self.url_of(&dlq).await?.ok_or_else(|| DriverError::NonRetryable {
                    code: "NonRetryable.MissingDependency",
                    message: format!("the dead-letter queue {dlq} does not exist; the dlq step must run first"),
                })?;
                let dlq_arn = self.arn_of(&dlq_url).await?;
                let mut attrs = queue_attrs;
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

    async fn observe(&self, spec: &ResourceSpec) -> Result<Observation, DriverError> {
        self.observation(spec).await
    }

    async fn inventory(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<InventoryPage, DriverError> {
        self.inventory_page(after, limit).await
    }

    async fn remove_found(&self, spec: &ResourceSpec, found: &Found) -> Result<(), DriverError> {
        crate::sdk::check_found(found, "queue")?;
        self.remove(spec, &found.name).await
    }

    async fn delete(&self, spec: &ResourceSpec) -> Result<(), DriverError> {
        self.undo(spec, "queue").await?;
        self.undo(spec, "dlq").await
    }
}
