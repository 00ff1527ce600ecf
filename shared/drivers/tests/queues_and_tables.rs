//! The AWS drivers against moto in server mode (a real AWS emulator on loopback). The test
//! command (scripts/test.sh) starts it and sets `PAVED_TEST_AWS_ENDPOINT`.

use aws_sdk_sqs::types::QueueAttributeName;
use paved_core::provisioning::{Driver, DriverError, ResourceSpec};
use paved_drivers::dynamodb::DynamoTableDriver;
use paved_drivers::sqs::SqsQueueDriver;
use serde_json::{Value, json};

fn endpoint() -> String {
    std::env::var("PAVED_TEST_AWS_ENDPOINT").expect(
        "PAVED_TEST_AWS_ENDPOINT is not set: run scripts/test.sh, which starts moto on loopback",
    )
}

async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    paved_aws::config::for_emulator(endpoint).await
}

fn spec(name: &str, parameters: Value) -> ResourceSpec {
    ResourceSpec {
        request_id: format!("req-{name}"),
        name: name.into(),
        owner: "group:default/team-a".into(),
        environment: "development".into(),
        parameters,
    }
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

#[tokio::test]
async fn an_sqs_queue_and_its_dlq_are_made_once_and_removed() {
    let config = sdk(&endpoint()).await;
    let driver = SqsQueueDriver::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let name = unique("orders");
    let s = spec(
        &name,
        json!({"retention_days": 2, "visibility_timeout_seconds": 45, "max_receive_count": 3}),
    );

    let dlq = driver.apply(&s, "dlq").await.expect("dlq");
    let queue = driver.apply(&s, "queue").await.expect("queue");
    assert_eq!(
        driver.apply(&s, "queue").await.expect("again"),
        queue,
        "a retried step finds its own queue"
    );
    assert_eq!(driver.apply(&s, "dlq").await.expect("again"), dlq);
    let listed = sqs
        .list_queues()
        .queue_name_prefix(format!("paved-development-{name}"))
        .send()
        .await
        .expect("list");
    assert_eq!(listed.queue_urls().len(), 2, "{listed:?}");

    let url = queue["queueUrl"].as_str().expect("url");
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("attributes")
        .attributes
        .expect("attributes");
    assert_eq!(attrs[&QueueAttributeName::VisibilityTimeout], "45");
    assert_eq!(
        attrs[&QueueAttributeName::MessageRetentionPeriod],
        (2 * 86_400).to_string()
    );
    let redrive: Value =
        serde_json::from_str(&attrs[&QueueAttributeName::RedrivePolicy]).expect("redrive json");
    assert_eq!(redrive["deadLetterTargetArn"], dlq["deadLetterQueueArn"]);
    assert_eq!(
        redrive["maxReceiveCount"].to_string().trim_matches('"'),
        "3"
    );
    assert!(driver.status(&s).await.expect("status").is_some());

    driver.undo(&s, "queue").await.expect("undo queue");
    driver
        .undo(&s, "queue")
        .await
        .expect("undoing twice is fine");
    assert!(driver.status(&s).await.expect("status").is_none());
    driver.delete(&s).await.expect("delete");
    let listed = sqs
        .list_queues()
        .queue_name_prefix(format!("paved-development-{name}"))
        .send()
        .await
        .expect("list");
    assert!(listed.queue_urls().is_empty(), "nothing left: {listed:?}");

    // FIFO names carry the suffix AWS requires.
    let fifo = spec(&unique("fifo"), json!({"fifo": true}));
    driver.apply(&fifo, "dlq").await.expect("fifo dlq");
    let q = driver.apply(&fifo, "queue").await.expect("fifo queue");
    assert!(q["queueUrl"].as_str().expect("url").ends_with(".fifo"));
    driver.delete(&fifo).await.expect("delete");
}

#[tokio::test]
async fn a_dynamodb_table_is_made_once_with_point_in_time_recovery_and_removed() {
    let config = sdk(&endpoint()).await;
    let driver = DynamoTableDriver::new(&config);
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let name = unique("ledger");
    let s = spec(
        &name,
        json!({"partition_key": "pk", "sort_key": "sk", "billing": "PROVISIONED", "read_capacity": 3, "write_capacity": 2}),
    );
    let out = driver.apply(&s, "table").await.expect("table");
    assert_eq!(
        driver.apply(&s, "table").await.expect("again"),
        out,
        "a retried step finds its table"
    );
    let table_name = out["tableName"].as_str().expect("name");
    let described = ddb
        .describe_table()
        .table_name(table_name)
        .send()
        .await
        .expect("describe")
        .table
        .expect("table");
    let keys: Vec<(&str, &str)> = described
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().as_str()))
        .collect();
    assert_eq!(keys, [("pk", "HASH"), ("sk", "RANGE")]);
    let throughput = described.provisioned_throughput().expect("throughput");
    assert_eq!(
        (
            throughput.read_capacity_units(),
            throughput.write_capacity_units()
        ),
        (Some(3), Some(2))
    );
    let backups = ddb
        .describe_continuous_backups()
        .table_name(table_name)
        .send()
        .await
        .expect("backups");
    let pitr = backups
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        .map(|s| s.as_str().to_owned());
    assert_eq!(pitr.as_deref(), Some("ENABLED"));

    driver.delete(&s).await.expect("delete");
    driver.delete(&s).await.expect("deleting twice is fine");
    assert!(driver.status(&s).await.expect("status").is_none());

    let missing = driver
        .apply(&spec(&unique("nokey"), json!({})), "table")
        .await
        .expect_err("no key");
    assert_eq!(missing.code(), "NonRetryable.InvalidParameters");
}

#[tokio::test]
async fn an_unreachable_provider_is_a_retryable_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let config = sdk(&dead).await;
    let err = SqsQueueDriver::new(&config)
        .apply(&spec("x-queue", json!({})), "dlq")
        .await
        .expect_err("unreachable");
    assert!(
        matches!(
            err,
            DriverError::Retryable {
                code: "Retryable.AwsUnavailable",
                ..
            }
        ),
        "{err:?}"
    );
    let err = DynamoTableDriver::new(&config)
        .apply(&spec("x-table", json!({"partition_key": "pk"})), "table")
        .await
        .expect_err("unreachable");
    assert!(err.code().starts_with("Retryable."), "{err:?}");
}

#[tokio::test]
async fn queues_and_tables_not_made_by_this_request_are_refused_and_left_alone() {
    let config = sdk(&endpoint()).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let queues = SqsQueueDriver::new(&config);
    let tables = DynamoTableDriver::new(&config);

    // B's queue and table under the name; A (earlier, freed the name) comes back late.
    let name = unique("reused");
    let b = spec(&name, json!({"partition_key": "pk"}));
    let mut a = b.clone();
    a.request_id = format!("{}-earlier", b.request_id);
    queues.apply(&b, "dlq").await.expect("dlq");
    let queue = queues.apply(&b, "queue").await.expect("queue");
    let url = queue["queueUrl"].as_str().expect("url").to_owned();
    let tags = sqs
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .expect("tags");
    assert_eq!(
        tags.tags().and_then(|t| t.get("paved:request-id")),
        Some(&b.request_id),
        "the queue names the request that made it"
    );
    tables.apply(&b, "table").await.expect("table");
    for err in [
        queues.undo(&a, "queue").await.expect_err("not A's"),
        queues.delete(&a).await.expect_err("not A's"),
        tables.undo(&a, "table").await.expect_err("not A's"),
        tables.delete(&a).await.expect_err("not A's"),
    ] {
        assert_eq!(err.code(), "NonRetryable.NotOwned", "{err}");
        assert!(err.to_string().contains(&b.request_id), "{err}");
    }
    for err in [
        queues.apply(&a, "dlq").await.expect_err("taken"),
        tables.apply(&a, "table").await.expect_err("taken"),
    ] {
        assert_eq!(err.code(), "NonRetryable.NameTaken", "{err}");
    }
    assert!(queues.status(&a).await.expect("status").is_none());
    assert!(
        queues
            .status(&b)
            .await
            .expect("B's queue survives")
            .is_some()
    );
    assert!(
        tables
            .status(&b)
            .await
            .expect("B's table survives")
            .is_some()
    );
    queues.delete(&b).await.expect("B deletes its own");
    tables.delete(&b).await.expect("B deletes its own");
    assert!(queues.status(&b).await.expect("status").is_none());

    // Made by hand under paved's names, without the tag: name taken, never touched.
    let hand = spec(&unique("byhand"), json!({"partition_key": "pk"}));
    let queue_name = format!("paved-development-{}-dlq", hand.name);
    sqs.create_queue()
        .queue_name(&queue_name)
        .send()
        .await
        .expect("a queue made by hand");
    let err = queues.apply(&hand, "dlq").await.expect_err("taken");
    assert_eq!(err.code(), "NonRetryable.NameTaken");
    assert!(err.to_string().contains("no paved marker"), "{err}");
    assert_eq!(
        queues
            .undo(&hand, "dlq")
            .await
            .expect_err("not ours")
            .code(),
        "NonRetryable.NotOwned"
    );
    let table_name = format!("paved-development-{}", hand.name);
    ddb.create_table()
        .table_name(&table_name)
        .key_schema(
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(aws_sdk_dynamodb::types::KeyType::Hash)
                .build()
                .expect("key"),
        )
        .attribute_definitions(
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .expect("attr"),
        )
        .billing_mode(aws_sdk_dynamodb::types::BillingMode::PayPerRequest)
        .send()
        .await
        .expect("a table made by hand");
    assert_eq!(
        tables
            .apply(&hand, "table")
            .await
            .expect_err("taken")
            .code(),
        "NonRetryable.NameTaken"
    );
    assert_eq!(
        tables.delete(&hand).await.expect_err("not ours").code(),
        "NonRetryable.NotOwned"
    );
    sqs.get_queue_url()
        .queue_name(&queue_name)
        .send()
        .await
        .expect("the hand-made queue is still there");
    ddb.describe_table()
        .table_name(&table_name)
        .send()
        .await
        .expect("the hand-made table is still there");
}

/// The paths of an observation's drift, sorted.
fn drift_paths(o: &paved_core::observation::Observation) -> Vec<String> {
    let mut paths: Vec<String> = o.drift.iter().map(|d| d.path.clone()).collect();
    paths.sort();
    paths
}

#[tokio::test]
async fn an_observed_queue_reports_edits_and_deletions_field_by_field() {
    let config = sdk(&endpoint()).await;
    let driver = SqsQueueDriver::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let name = unique("observed");
    let s = spec(
        &name,
        json!({"retention_days": 2, "visibility_timeout_seconds": 45, "max_receive_count": 3}),
    );
    driver.apply(&s, "dlq").await.expect("dlq");
    let made = driver.apply(&s, "queue").await.expect("queue");
    let url = made["queueUrl"].as_str().expect("url").to_owned();
    let dlq_url = made["deadLetterQueueUrl"]
        .as_str()
        .expect("dlq url")
        .to_owned();

    let fresh = driver.observe(&s).await.expect("observe");
    assert!(fresh.is_synced(), "as provisioned: {:?}", fresh.drift);
    assert_eq!(fresh.calls, 6, "three read-only calls per queue");

    // Someone edits the visibility timeout in the console.
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::VisibilityTimeout, "99")
        .send()
        .await
        .expect("edit");
    let edited = driver.observe(&s).await.expect("observe");
    assert!(edited.exists);
    assert_eq!(drift_paths(&edited), ["queue.VisibilityTimeout"]);
    assert_eq!(edited.drift[0].desired, json!("45"));
    assert_eq!(edited.drift[0].actual, json!("99"));

    // And deletes the dead-letter queue.
    sqs.delete_queue()
        .queue_url(&dlq_url)
        .send()
        .await
        .expect("delete dlq");
    let no_dlq = driver.observe(&s).await.expect("observe");
    assert_eq!(
        drift_paths(&no_dlq),
        ["deadLetterQueue", "queue.VisibilityTimeout"],
        "{:?}",
        no_dlq.drift
    );
    assert_eq!(no_dlq.drift[0].actual, Value::Null);

    // Observing changed nothing: the edit is still there, nothing was recreated.
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .expect("attributes");
    assert_eq!(
        attrs
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::VisibilityTimeout).cloned())
            .as_deref(),
        Some("99")
    );
    sqs.delete_queue()
        .queue_url(&url)
        .send()
        .await
        .expect("delete");
    let gone = driver.observe(&s).await.expect("observe");
    assert!(!gone.exists);
    assert!(drift_paths(&gone).contains(&"queue".to_owned()));
}

#[tokio::test]
async fn an_observed_table_reports_pitr_off_and_deletion() {
    let config = sdk(&endpoint()).await;
    let driver = DynamoTableDriver::new(&config);
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let name = unique("observed");
    let s = spec(&name, json!({"partition_key": "pk", "sort_key": "sk"}));
    let made = driver.apply(&s, "table").await.expect("table");
    let table = made["tableName"].as_str().expect("name").to_owned();

    let fresh = driver.observe(&s).await.expect("observe");
    assert!(fresh.is_synced(), "as provisioned: {:?}", fresh.drift);
    assert_eq!(fresh.calls, 3);

    ddb.update_continuous_backups()
        .table_name(&table)
        .point_in_time_recovery_specification(
            aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(false)
                .build()
                .expect("spec"),
        )
        .send()
        .await
        .expect("pitr off");
    let off = driver.observe(&s).await.expect("observe");
    assert_eq!(drift_paths(&off), ["table.pointInTimeRecovery"]);
    assert_eq!(off.drift[0].desired, json!(true));
    assert_eq!(off.drift[0].actual, json!(false));

    ddb.delete_table()
        .table_name(&table)
        .send()
        .await
        .expect("delete");
    let gone = driver.observe(&s).await.expect("observe");
    assert!(!gone.exists);
    assert_eq!(drift_paths(&gone), ["table"]);
}

// Enforcement: after a hand change, applying every step of the plan again, in plan order,
// brings the queue or the table back to what was provisioned (the reconciliation loop's
// `enforce`), and observe sees it in sync.

/// Every step of the plan again, in plan order; then observe sees it in sync.
async fn apply_all_again(driver: &dyn Driver, s: &ResourceSpec) {
    for step in driver.plan(s).expect("plan") {
        driver
            .apply(s, &step.step)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", step.step));
    }
    let repaired = driver.observe(s).await.expect("observe");
    assert!(repaired.is_synced(), "repaired: {repaired:?}");
}

/// What observe reports now: whether the resource exists, and exactly these drift paths.
async fn assert_drift(driver: &dyn Driver, s: &ResourceSpec, exists: bool, paths: &[&str]) {
    let seen = driver.observe(s).await.expect("observe");
    assert_eq!(seen.exists, exists, "{:?}", seen.drift);
    assert_eq!(drift_paths(&seen), paths, "{:?}", seen.drift);
}

/// A queue and its dead-letter queue, provisioned and observed in sync; the outputs of the
/// `queue` step.
async fn provisioned_queue(driver: &SqsQueueDriver, s: &ResourceSpec) -> Value {
    driver.apply(s, "dlq").await.expect("dlq");
    let made = driver.apply(s, "queue").await.expect("queue");
    let fresh = driver.observe(s).await.expect("observe");
    assert!(fresh.is_synced(), "as provisioned: {:?}", fresh.drift);
    made
}

async fn queue_attributes(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
) -> std::collections::HashMap<QueueAttributeName, String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::All)
        .send()
        .await
        .expect("attributes")
        .attributes
        .expect("attributes")
}

fn queue_spec() -> ResourceSpec {
    spec(
        &unique("enforced"),
        json!({"retention_days": 2, "visibility_timeout_seconds": 45, "max_receive_count": 3}),
    )
}

#[tokio::test]
async fn apply_again_restores_an_edited_visibility_timeout() {
    let config = sdk(&endpoint()).await;
    let driver = SqsQueueDriver::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let s = queue_spec();
    let made = provisioned_queue(&driver, &s).await;
    let url = made["queueUrl"].as_str().expect("url");
    sqs.set_queue_attributes()
        .queue_url(url)
        .attributes(QueueAttributeName::VisibilityTimeout, "99")
        .send()
        .await
        .expect("edit");
    assert_drift(&driver, &s, true, &["queue.VisibilityTimeout"]).await;
    apply_all_again(&driver, &s).await;
    assert_eq!(
        queue_attributes(&sqs, url).await[&QueueAttributeName::VisibilityTimeout],
        "45"
    );
    driver.delete(&s).await.expect("delete");
}

#[tokio::test]
async fn apply_again_restores_an_edited_retention() {
    let config = sdk(&endpoint()).await;
    let driver = SqsQueueDriver::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let s = queue_spec();
    let made = provisioned_queue(&driver, &s).await;
    let url = made["queueUrl"].as_str().expect("url");
    sqs.set_queue_attributes()
        .queue_url(url)
        .attributes(QueueAttributeName::MessageRetentionPeriod, "600")
        .send()
        .await
        .expect("edit");
    assert_drift(&driver, &s, true, &["queue.MessageRetentionPeriod"]).await;
    apply_all_again(&driver, &s).await;
    assert_eq!(
        queue_attributes(&sqs, url).await[&QueueAttributeName::MessageRetentionPeriod],
        (2 * 86_400).to_string()
    );
    driver.delete(&s).await.expect("delete");
}

#[tokio::test]
async fn apply_again_recreates_a_deleted_dlq_and_points_the_redrive_at_it() {
    let config = sdk(&endpoint()).await;
    let driver = SqsQueueDriver::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let s = queue_spec();
    let made = provisioned_queue(&driver, &s).await;
    let url = made["queueUrl"].as_str().expect("url");
    sqs.delete_queue()
        .queue_url(made["deadLetterQueueUrl"].as_str().expect("dlq url"))
        .send()
        .await
        .expect("delete dlq");
    assert_drift(&driver, &s, true, &["deadLetterQueue"]).await;
    apply_all_again(&driver, &s).await;

    // The dead-letter queue is back under its name, with this request's tag, and the queue's
    // redrive policy names it.
    let dlq = driver.apply(&s, "dlq").await.expect("dlq");
    let dlq_url = dlq["deadLetterQueueUrl"].as_str().expect("dlq url");
    let tags = sqs
        .list_queue_tags()
        .queue_url(dlq_url)
        .send()
        .await
        .expect("tags");
    assert_eq!(
        tags.tags().and_then(|t| t.get("paved:request-id")),
        Some(&s.request_id)
    );
    let redrive: Value = serde_json::from_str(
        &queue_attributes(&sqs, url).await[&QueueAttributeName::RedrivePolicy],
    )
    .expect("redrive json");
    assert_eq!(redrive["deadLetterTargetArn"], dlq["deadLetterQueueArn"]);
    driver.delete(&s).await.expect("delete");
}

/// A table, provisioned and observed in sync; its name.
async fn provisioned_table(driver: &DynamoTableDriver, s: &ResourceSpec) -> String {
    let made = driver.apply(s, "table").await.expect("table");
    let fresh = driver.observe(s).await.expect("observe");
    assert!(fresh.is_synced(), "as provisioned: {:?}", fresh.drift);
    made["tableName"].as_str().expect("name").to_owned()
}

fn table_spec() -> ResourceSpec {
    spec(
        &unique("enforced"),
        json!({"partition_key": "pk", "sort_key": "sk"}),
    )
}

async fn pitr_enabled(ddb: &aws_sdk_dynamodb::Client, table: &str) -> bool {
    ddb.describe_continuous_backups()
        .table_name(table)
        .send()
        .await
        .expect("backups")
        .continuous_backups_description()
        .and_then(|d| d.point_in_time_recovery_description())
        .and_then(|p| p.point_in_time_recovery_status())
        .is_some_and(|s| s.as_str() == "ENABLED")
}

#[tokio::test]
async fn apply_again_turns_point_in_time_recovery_back_on() {
    let config = sdk(&endpoint()).await;
    let driver = DynamoTableDriver::new(&config);
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let s = table_spec();
    let table = provisioned_table(&driver, &s).await;
    ddb.update_continuous_backups()
        .table_name(&table)
        .point_in_time_recovery_specification(
            aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(false)
                .build()
                .expect("spec"),
        )
        .send()
        .await
        .expect("pitr off");
    assert_drift(&driver, &s, true, &["table.pointInTimeRecovery"]).await;
    apply_all_again(&driver, &s).await;
    assert!(pitr_enabled(&ddb, &table).await);
    driver.delete(&s).await.expect("delete");
}

#[tokio::test]
async fn apply_again_recreates_a_deleted_table_under_its_name() {
    let config = sdk(&endpoint()).await;
    let driver = DynamoTableDriver::new(&config);
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let s = table_spec();
    let table = provisioned_table(&driver, &s).await;
    ddb.delete_table()
        .table_name(&table)
        .send()
        .await
        .expect("delete");
    assert_drift(&driver, &s, false, &["table"]).await;
    apply_all_again(&driver, &s).await;
    assert_eq!(
        driver.apply(&s, "table").await.expect("again")["tableName"],
        json!(table),
        "the same name"
    );
    assert!(pitr_enabled(&ddb, &table).await);
    driver.delete(&s).await.expect("delete");
}

/// The tag is the only proof the table is this request's: with it removed, apply refuses the
/// table like one paved did not make, touches nothing, and the drift stays.
#[tokio::test]
async fn a_table_whose_tag_was_removed_is_not_adopted_by_apply() {
    let config = sdk(&endpoint()).await;
    let driver = DynamoTableDriver::new(&config);
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let s = table_spec();
    let table = provisioned_table(&driver, &s).await;
    let arn = ddb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .expect("describe")
        .table
        .and_then(|t| t.table_arn)
        .expect("arn");
    ddb.untag_resource()
        .resource_arn(&arn)
        .tag_keys("paved:request-id")
        .send()
        .await
        .expect("untag");
    assert_drift(&driver, &s, false, &["table.tags.paved:request-id"]).await;
    ddb.update_continuous_backups()
        .table_name(&table)
        .point_in_time_recovery_specification(
            aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(false)
                .build()
                .expect("spec"),
        )
        .send()
        .await
        .expect("pitr off");
    let err = driver.apply(&s, "table").await.expect_err("not adopted");
    assert_eq!(err.code(), "NonRetryable.NameTaken", "{err}");
    assert!(err.to_string().contains("no paved marker"), "{err}");
    assert!(!pitr_enabled(&ddb, &table).await, "nothing was changed");
    assert_drift(&driver, &s, false, &["table.tags.paved:request-id"]).await;
    assert_eq!(
        driver.delete(&s).await.expect_err("not ours").code(),
        "NonRetryable.NotOwned"
    );
    ddb.delete_table()
        .table_name(&table)
        .send()
        .await
        .expect("clean up by hand");
}
