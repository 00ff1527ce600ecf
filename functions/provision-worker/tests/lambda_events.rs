//! The sample SQS batches in `events/` (the files `cargo lambda invoke --data-file` takes) read
//! the way the Lambda entry reads it.

use aws_lambda_events::event::sqs::SqsEvent;
use paved_core::tasks::{TaskAction, TaskMessage};
use provision_worker::lambda::{batch_response, deliveries};

#[test]
fn the_sample_task_batch_reads_as_tasks_and_a_failure_response_names_one() {
    let event: SqsEvent = serde_json::from_str(include_str!(
        "../../../events/provision-worker.sqs.tasks.json"
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
    let undo: TaskMessage = serde_json::from_str(&batch[1].body).expect("a task message");
    assert_eq!(
        undo.task_id,
        TaskMessage::task_id_for("req-0a1b2c", "role", TaskAction::Undo)
    );
    assert_eq!(batch[1].receive_count, 2);

    let response =
        serde_json::to_value(batch_response(vec![batch[1].message_id.clone()])).expect("json");
    assert_eq!(
        response,
        serde_json::json!({"batchItemFailures": [{"itemIdentifier": "7d1bd3f6-57c8-4d2a-8a4e-29b0d1e6a6f0"}]})
    );
}

#[test]
fn the_sample_notification_batch_reads_as_a_final_status() {
    let event: SqsEvent = serde_json::from_str(include_str!(
        "../../../events/provision-worker.sqs.notifications.json"
    ))
    .expect("an SQS event");
    let batch = deliveries(event);
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].receive_count, 3);
    let note: serde_json::Value = serde_json::from_str(&batch[0].body).expect("json");
    assert_eq!(note["status"], "READY");
}
