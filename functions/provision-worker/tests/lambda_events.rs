//! The sample SQS batch in `events/` (the file `cargo lambda invoke --data-file` takes) read
//! the way the Lambda entry reads it.

use aws_lambda_events::event::sqs::SqsEvent;
use paved_core::tasks::{TaskAction, TaskMessage};
use provision_worker::lambda::{batch_response, deliveries};

#[test]
fn the_sample_batch_reads_as_a_task_and_a_notification() {
    let event: SqsEvent = serde_json::from_str(include_str!(
        "../../../events/provision-worker.sqs-batch.json"
    ))
    .expect("an SQS event");
    let batch = deliveries(event);
    assert_eq!(batch.len(), 2);
    let task: TaskMessage = serde_json::from_str(&batch[0].body).expect("a task message");
    assert_eq!(
        (task.action, task.step.as_str()),
        (TaskAction::Apply, "database")
    );
    assert_eq!(
        task.task_id,
        TaskMessage::task_id_for("req-0a1b2c", "database", TaskAction::Apply)
    );
    assert!(task.task_token.is_some());
    assert_eq!(batch[1].receive_count, 3);
    let note: serde_json::Value = serde_json::from_str(&batch[1].body).expect("json");
    assert_eq!(note["status"], "READY");

    let response =
        serde_json::to_value(batch_response(vec![batch[1].message_id.clone()])).expect("json");
    assert_eq!(
        response,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}]})
    );
}
