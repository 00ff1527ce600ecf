//! The `dynamodb-table` driver, on the AWS SDK: a table with a string partition key, an
//! optional sort key and point-in-time recovery, against AWS or an emulator (moto) through
//! `AWS_ENDPOINT_URL`, with the same code.
//!
//! Names are deterministic (`paved-<environment>-<name>`), so a retried step finds the table an
//! earlier attempt made. Ownership ([`crate::ownership`]): tables are created with the tag
//! `paved:request-id` in the same call, and are adopted, undone or deleted only by the request
//! that tag names.
//!
//! Applying the step again repairs what was changed by hand (the reconciliation loop's
//! `enforce`): a deleted table is created again under its name (one still `DELETING` is a
//! retryable wait), and point-in-time recovery is turned on at every apply, not only at
//! creation. The tag is the ownership marker: a table whose tag was removed carries no proof
//! that it is this request's, so apply refuses it ([`codes::NAME_TAKEN`]) like any table
//! paved did not make, and the drift stays for a person to resolve.
//!
//! [`codes::NAME_TAKEN`]: paved_core::provisioning::codes::NAME_TAKEN

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    PointInTimeRecoveryStatus, ProvisionedThroughput, ScalarAttributeType, TableStatus,
};
use paved_core::observation::{Found, InventoryPage, Observation};
use paved_core::provisioning::{Driver, DriverError, PlannedStep, Planner, ResourceSpec};
use serde_json::{Value, json};

use crate::ownership::{Holder, TAG};
use crate::sdk::{aws_name, classify, param_u64, service_code};

pub const DYNAMODB_RESOURCE_TYPE: &str = "dynamodb-table";

/// A table with a string partition key, an optional string sort key, and point-in-time
/// recovery on.
#[derive(Debug)]
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
        Ok(Holder::of(self.marker(table).await?, request_id))
    }

    /// `None` when there is no table, else the request its tag names (`None` for no tag).
    async fn marker(
        &self,
        table: Option<&aws_sdk_dynamodb::types::TableDescription>,
    ) -> Result<Option<Option<String>>, DriverError> {
        let Some(table) = table else {
            return Ok(None);
        };
        let Some(arn) = table.table_arn() else {
            return Ok(Some(None));
        };
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
                    return Ok(None);
                }
                Err(e) => return Err(classify("ListTagsOfResource", e)),
            };
            if let Some(t) = page.tags().iter().find(|t| t.key() == TAG) {
                return Ok(Some(Some(t.value().to_owned())));
            }
            match page.next_token {
                Some(token) => next = Some(token),
                None => return Ok(Some(None)),
            }
        }
    }

    /// A page of the tables named `paved-*` that carry paved's tag: one `ListTables`, then a
    /// `DescribeTable` and a `ListTagsOfResource` per paved-named table listed.
    async fn inventory_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<InventoryPage, DriverError> {
        let listed = self
            .client
            .list_tables()
            .set_exclusive_start_table_name(after.map(str::to_owned))
            .limit(i32::try_from(limit.clamp(1, 100)).unwrap_or(100))
            .send()
            .await
            .map_err(|e| classify("ListTables", e))?;
        let mut page = InventoryPage {
            calls: 1,
            next: listed.last_evaluated_table_name.clone(),
            ..InventoryPage::default()
        };
        for name in listed.table_names() {
            if !crate::sdk::is_paved_aws_name(name) {
                continue;
            }
            page.calls += 2;
            let table = self.describe(name).await?;
            if let Some(Some(id)) = self.marker(table.as_ref()).await? {
                page.found.push(Found {
                    kind: "table".into(),
                    name: name.clone(),
                    request_id: Some(id),
                });
            }
        }
        Ok(page)
    }

    /// Deletes the table `name` if its tag names `spec`'s request.
    async fn remove_table(&self, spec: &ResourceSpec, name: &str) -> Result<(), DriverError> {
        let table = self.describe(name).await?;
        if !self
            .holder(table.as_ref(), &spec.request_id)
            .await?
            .for_removal(&format!("the DynamoDB table {name}"))?
        {
            return Ok(());
        }
        match self.client.delete_table().table_name(name).send().await {
            Ok(_) => Ok(()),
            Err(e) if service_code(&e) == Some("ResourceNotFoundException") => Ok(()),
            Err(e) => Err(classify("DeleteTable", e)),
        }
    }

    /// What exists of the table and how it differs from what `spec` provisions, field by
    /// field: existence and paved's tag, its keys, billing mode and point-in-time recovery.
    /// Read-only: `DescribeTable`, `ListTagsOfResource` and `DescribeContinuousBackups`.
    async fn observation(&self, spec: &ResourceSpec) -> Result<Observation, DriverError> {
        let name = aws_name(spec);
        let mut seen = Observation {
            calls: 1,
            ..Observation::default()
        };
        let Some(table) = self.describe(&name).await? else {
            seen.compare("table", json!(name), Value::Null);
            return Ok(seen);
        };
        seen.calls += 1;
        match self.holder(Some(&table), &spec.request_id).await? {
            Holder::Ours => {}
            Holder::Absent => {
                seen.compare("table", json!(name), Value::Null);
                return Ok(seen);
            }
            Holder::Other(tag) => {
                seen.compare(
                    &format!("table.tags.{TAG}"),
                    json!(spec.request_id),
                    tag.map_or(Value::Null, Value::String),
                );
                return Ok(seen);
            }
        }
        seen.exists = true;
        let key_of = |kind: KeyType| {
            table
                .key_schema()
                .iter()
                .find(|k| *k.key_type() == kind)
                .map_or(Value::Null, |k| json!(k.attribute_name()))
        };
        let param = |name: &str| {
            spec.parameters
                .get(name)
                .and_then(Value::as_str)
                .map_or(Value::Null, |v| json!(v))
        };
        seen.compare(
            "table.partitionKey",
            param("partition_key"),
            key_of(KeyType::Hash),
        );
        seen.compare("table.sortKey", param("sort_key"), key_of(KeyType::Range));
        let desired_billing =
            if spec.parameters.get("billing").and_then(Value::as_str) == Some("PROVISIONED") {
                BillingMode::Provisioned
            } else {
                BillingMode::PayPerRequest
            };
        // A table without a billing summary is PROVISIONED (DynamoDB's own reading).
        let billing = table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode().cloned())
            .unwrap_or(BillingMode::Provisioned);
        seen.compare(
            "table.billingMode",
            json!(desired_billing.as_str()),
            json!(billing.as_str()),
        );
        seen.calls += 1;
        let backups = self
            .client
            .describe_continuous_backups()
            .table_name(&name)
            .send()
            .await
            .map_err(|e| classify("DescribeContinuousBackups", e))?;
        let pitr = backups
            .continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|p| p.point_in_time_recovery_status())
            .is_some_and(|s| *s == PointInTimeRecoveryStatus::Enabled);
        seen.compare("table.pointInTimeRecovery", json!(true), json!(pitr));
        Ok(seen)
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
#[derive(Debug)]
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
        if existing
            .as_ref()
            .is_some_and(|t| t.table_status == Some(TableStatus::Deleting))
        {
            // Deleted (by hand, say) and not gone yet: its name is free once it is, and then
            // a retry creates the table again. Nothing of it is read or adopted meanwhile.
            return Err(DriverError::Retryable {
                code: "Retryable.InProgress",
                message: format!("{name} is being deleted; it is created again once it is gone"),
            });
        }
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
        // Every time, not only after CreateTable: this is what turns recovery back on when
        // someone switched it off.
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
        self.remove_table(spec, &aws_name(spec)).await
    }

    async fn status(&self, spec: &ResourceSpec) -> Result<Option<Value>, DriverError> {
        let table = self.describe(&aws_name(spec)).await?;
        if self.holder(table.as_ref(), &spec.request_id).await? != Holder::Ours {
            return Ok(None);
        }
        Ok(table.map(|t| json!({"tableName": t.table_name, "status": t.table_status.map(|s| s.as_str().to_owned())})))
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
        crate::sdk::check_found(found, "table")?;
        self.remove_table(spec, &found.name).await
    }

    async fn delete(&self, spec: &ResourceSpec) -> Result<(), DriverError> {
        self.undo(spec, "table").await
    }
}
