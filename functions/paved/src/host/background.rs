//! The loops Lambda's event source mappings, Step Functions and EventBridge run on AWS: the
//! task and notification pollers, the engine's timers, the DORA report, the QUEUED sweeper
//! and the reconciliation loop's tick.

use super::Platform;
use std::sync::Arc;
use std::time::Duration;

use paved_core::ports::Queue;
use provision_worker::embedded::{QueueBinding, poll};
use tokio::sync::watch;

/// Stops the background loops of [`Platform::start_background`] when dropped or stopped.
#[derive(Debug)]
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    /// Asks every loop to stop after its current batch, and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    while !*rx.borrow() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

impl Platform {
    /// Starts what Lambda's event source mappings and Step Functions do on AWS: the task and
    /// notification pollers, the engine's timers (embedded only), and a sweeper that starts
    /// the execution of any request left QUEUED by a crash.
    pub fn start_background(&self) -> Background {
        let (stop, rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let queue: Arc<dyn Queue> = Arc::clone(&self.backend.queue);
        let names = &self.backend.queues;
        // SQS long-polls inside the receive; the embedded queue wakes on a send.
        let idle_poll = if self.backend.embedded.is_some() {
            Duration::from_millis(50)
        } else {
            Duration::ZERO
        };
        for _ in 0..self.workers {
            tasks.push(tokio::spawn(poll(
                Arc::clone(&queue),
                Arc::clone(&self.worker),
                QueueBinding {
                    retry_after: self.retry_after,
                    idle_poll,
                    ..QueueBinding::new(&names.tasks, &names.task_dead_letters, self.max_receives)
                },
                stopped(rx.clone()),
            )));
        }
        tasks.push(tokio::spawn(poll(
            Arc::clone(&queue),
            Arc::clone(&self.worker),
            QueueBinding {
                idle_poll,
                ..QueueBinding::new(
                    &names.notifications,
                    &names.notification_dead_letters,
                    self.max_receives,
                )
            },
            stopped(rx.clone()),
        )));
        if let Some(embedded) = &self.backend.embedded {
            let engine = embedded.engine.clone();
            let until = stopped(rx.clone());
            tasks.push(tokio::spawn(async move { engine.run_timers(until).await }));
        }
        #[cfg(not(feature = "analytics"))]
        if self.dora_every.is_some() {
            tracing::info!(
                "DORA reports are not in this build of paved; build it with --features analytics"
            );
        }
        #[cfg(feature = "analytics")]
        if let Some(every) = self.dora_every {
            let job = Arc::clone(&self.dora);
            let mut until = Box::pin(stopped(rx.clone()));
            tasks.push(tokio::spawn(async move {
                loop {
                    if let Err(e) = job.run(chrono::Utc::now()).await {
                        tracing::error!(error = %e, "the DORA report failed");
                    }
                    tokio::select! {
                        () = &mut until => return,
                        () = tokio::time::sleep(every) => {},
                    }
                }
            }));
        }
        if let Some(reconciler) = self.worker.reconciler().filter(|r| r.settings().enabled) {
            // The reconciliation loop's schedule (EventBridge on AWS: the `reconciler` function).
            let reconciler = Arc::clone(reconciler);
            let every = reconciler.settings().tick_period;
            let mut until = Box::pin(stopped(rx.clone()));
            tasks.push(tokio::spawn(async move {
                loop {
                    match reconciler.tick().await {
                        Ok(report)
                            if report.queued.values().any(|n| *n > 0)
                                || !report.scans.is_empty() =>
                        {
                            tracing::info!(?report, "observations and leak scans queued")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "the reconciler's tick failed"),
                    }
                    tokio::select! {
                        () = &mut until => return,
                        () = tokio::time::sleep(every) => {},
                    }
                }
            }));
        }
        let service = Arc::clone(&self.requests_state.service);
        let mut until = Box::pin(stopped(rx));
        tasks.push(tokio::spawn(async move {
            loop {
                match service.resume_queued().await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(requests = n, "started the executions of queued requests")
                    }
                    Err(e) => tracing::error!(error = %e, "resuming queued requests failed"),
                }
                tokio::select! {
                    () = &mut until => return,
                    () = tokio::time::sleep(Duration::from_secs(60)) => {},
                }
            }
        }));
        Background { stop, tasks }
    }
}
