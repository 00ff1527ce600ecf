//! The reconciliation loop, in two halves that share nothing but the table and the task queue:
//!
//! - the **tick** (an EventBridge schedule on AWS, a background loop in `paved up`) reads each
//!   provider's schedule in due order and queues one typed observe task per due resource, at
//!   most the provider's rate: every task gets its own start slot, `1/rate` seconds after the
//!   last one given out, and is queued with the delay that makes it visible at its slot. The
//!   slots and the read position (a cursor) are claimed with one conditional write per
//!   provider per tick, so two ticks never hand out the same slot;
//! - the **observe task** (run by the provision worker) observes the resource through its
//!   driver, behind the worker's circuit breaker, and records conditions, drift and history;
//!   under `enforce` it repairs by re-running the request's steps through the idempotent task
//!   path, with task ids that carry the repair's number, so two reconcilers that race repair
//!   once.
//!
//! A provider whose breaker opens is paused in the table (`pausedUntilMs`): ticks stop handing
//! out its slots until the breaker's cool-down ends, and its resources read `Synced=Unknown`
//! with the reason, never drift.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::leaks::{LeakRepository, MAX_SCAN_PAGE};
use super::store::ResourceRepository;
use super::{ConditionStatus, ManagementPolicy, READY, ResourceState, SYNCED, is_ignored};
use crate::circuit::{CircuitBreakers, Permit};
use crate::error::Error;
use crate::messages::{ChatEvent, ChatNotification, WorkerMessage};
use crate::observation::{Drift, Observation};
use crate::ports::{
    Clock, Condition, Item, Key, Queue, QueueMessage, SortKeyRange, StoreError, Table,
};
use crate::provisioning::DriverError;
use crate::requests::{RequestRepository, RequestStatus};
use crate::tasks::{TaskAction, TaskMessage, TaskOutcome, TaskRunner};

const PROVIDER_PARTITION: &str = "RECONCILE#PROVIDER";

/// One observation to make: the task queue's `{"kind": "observe", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObserveTask {
    pub request_id: String,
    pub resource_type: String,
    /// The slot the tick gave it (ms since the epoch): the worker starts no earlier.
    pub not_before_ms: i64,
    /// Asked for by a person (`POST /v1/resources/{id}/reconcile`), not the schedule.
    #[serde(default)]
    pub manual: bool,
}

/// The loop's settings, read once (see [`ReconcilerSettings::from_lookup`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ReconcilerSettings {
    /// How often the tick runs (EventBridge: every minute); slots are handed out this far
    /// ahead.
    pub tick_period: Duration,
    /// Observations per second per provider.
    pub default_rate: f64,
    pub rates: HashMap<String, f64>,
    /// A resource whose slot passed this long ago without an observation (its task was lost)
    /// is queued again.
    pub lost_after: Duration,
    /// Whether the loop runs at all (`PAVED_RECONCILE=off` stops the tick, not manual
    /// reconciles).
    pub enabled: bool,
    /// How often each provider is scanned for leaks (`None`: never).
    pub leak_scan_every: Option<Duration>,
}

impl Default for ReconcilerSettings {
    fn default() -> Self {
        Self {
            tick_period: Duration::from_secs(60),
            default_rate: 5.0,
            rates: HashMap::new(),
            lost_after: Duration::from_secs(600),
            enabled: true,
            leak_scan_every: Some(Duration::from_secs(24 * 3600)),
        }
    }
}

impl ReconcilerSettings {
    /// `PAVED_RECONCILE` (`on`|`off`), `PAVED_RECONCILE_RATE` (observations per second per
    /// provider, default 5), `PAVED_RECONCILE_RATES` (`postgres=2,sqs=10`: per provider) and
    /// `PAVED_RECONCILE_TICK_SECONDS` (default 60) and `PAVED_LEAK_SCAN_HOURS` (hours
    /// between two leak scans of a provider, 1 to 720, default 24; `off` for none).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut s = Self::default();
        if let Some(v) = get("PAVED_RECONCILE") {
            s.enabled = match v.trim() {
                "" | "on" | "true" | "1" => true,
                "off" | "false" | "0" => false,
                other => return Err(format!("PAVED_RECONCILE is '{other}'; use on or off")),
            };
        }
        let rate = |name: &str, v: &str| -> Result<f64, String> {
            match v.trim().parse::<f64>() {
                Ok(r) if (0.01..=1000.0).contains(&r) => Ok(r),
                _ => Err(format!(
                    "{name}: '{v}' is not a rate between 0.01 and 1000 per second"
                )),
            }
        };
        if let Some(v) = get("PAVED_RECONCILE_RATE").filter(|v| !v.trim().is_empty()) {
            s.default_rate = rate("PAVED_RECONCILE_RATE", &v)?;
        }
        if let Some(v) = get("PAVED_RECONCILE_RATES") {
            for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (provider, r) = pair.split_once('=').ok_or_else(|| {
                    format!("PAVED_RECONCILE_RATES: '{pair}' is not provider=rate")
                })?;
                s.rates.insert(
                    provider.trim().to_owned(),
                    rate("PAVED_RECONCILE_RATES", r)?,
                );
            }
        }
        if let Some(v) = get("PAVED_RECONCILE_TICK_SECONDS").filter(|v| !v.trim().is_empty()) {
            let secs: u64 = v
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=900).contains(n))
                .ok_or_else(|| {
                    format!("PAVED_RECONCILE_TICK_SECONDS: '{v}' is not 1 to 900 seconds")
                })?;
            s.tick_period = Duration::from_secs(secs);
        }
        if let Some(v) = get("PAVED_LEAK_SCAN_HOURS").filter(|v| !v.trim().is_empty()) {
            s.leak_scan_every = match v.trim() {
                "off" | "0" => None,
                hours => Some(Duration::from_secs(
                    hours
                        .parse::<u64>()
                        .ok()
                        .filter(|h| (1..=720).contains(h))
                        .ok_or_else(|| {
                            format!("PAVED_LEAK_SCAN_HOURS: '{v}' is not 1 to 720 hours or off")
                        })?
                        * 3600,
                )),
            };
        }
        Ok(s)
    }

    pub fn rate(&self, provider: &str) -> f64 {
        self.rates
            .get(provider)
            .copied()
            .unwrap_or(self.default_rate)
    }
}

/// What one tick did, per provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TickReport {
    pub queued: HashMap<String, usize>,
    pub paused: Vec<String>,
    /// Providers whose leak scan this tick started.
    pub scans: Vec<String>,
}

/// A provider's slots and read position, one item per provider.
#[derive(Debug, Clone, Default, PartialEq)]
struct ProviderSlots {
    next_slot_ms: i64,
    cursor: Option<String>,
    paused_until_ms: i64,
    /// When the provider's next leak scan is due (ms since the epoch).
    next_scan_ms: i64,
    version: Option<u64>,
}

impl ProviderSlots {
    fn from_item(item: &Item) -> Self {
        let int = |k: &str| item.attrs.get(k).and_then(Value::as_i64).unwrap_or(0);
        Self {
            next_slot_ms: int("nextSlotMs"),
            cursor: item.str_attr("cursor").map(str::to_owned),
            paused_until_ms: int("pausedUntilMs"),
            next_scan_ms: int("nextScanMs"),
            version: item.attrs.get("version").and_then(Value::as_u64),
        }
    }

    fn item(&self, provider: &str, version: u64) -> Item {
        let mut attrs = Map::new();
        attrs.insert("nextSlotMs".into(), json!(self.next_slot_ms));
        if let Some(c) = &self.cursor {
            attrs.insert("cursor".into(), json!(c));
        }
        attrs.insert("pausedUntilMs".into(), json!(self.paused_until_ms));
        attrs.insert("nextScanMs".into(), json!(self.next_scan_ms));
        attrs.insert("version".into(), json!(version));
        Item::new(Key::new(PROVIDER_PARTITION, provider), attrs)
    }

    fn condition(&self) -> Condition {
        match self.version {
            None => Condition::Absent,
            Some(v) => Condition::AttrEquals {
                name: "version".into(),
                value: json!(v),
            },
        }
    }
}

pub struct Reconciler {
    resources: ResourceRepository,
    leaks: LeakRepository,
    requests: Arc<RequestRepository>,
    table: Arc<dyn Table>,
    queue: Arc<dyn Queue>,
    task_queue: String,
    notification_queue: String,
    clock: Arc<dyn Clock>,
    settings: ReconcilerSettings,
    /// The worker's task runner (drivers and the idempotent task path); `None` where only
    /// the tick or the API runs.
    runner: Option<Arc<TaskRunner>>,
    /// Whether chat notifications are queued (Slack is set up).
    notify: bool,
    /// The earliest start of this process's next observation per provider (µs since the
    /// epoch): a worker that fell behind its slots catches up at the provider's rate, never
    /// in a burst.
    pacing: parking_lot::Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reconciler").finish_non_exhaustive()
    }
}

/// What one observe task ended as (for tests and logs).
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// Recorded: the resource's state after it.
    Recorded(Box<ResourceState>),
    /// Nothing to do: the request is not READY (deprovisioning, gone), or another reconciler
    /// recorded first.
    Skipped(&'static str),
}

fn jitter_ms(id: &str, at_ms: i64, interval_ms: i64) -> i64 {
    // ±10% of the interval, spread by the id and the time (no clock-wide thundering herd).
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (id, at_ms).hash(&mut h);
    let span = (interval_ms / 5).max(1);
    (h.finish() % span as u64) as i64 - span / 2
}

impl Reconciler {
    pub fn new(
        table: Arc<dyn Table>,
        queue: Arc<dyn Queue>,
        task_queue: String,
        notification_queue: String,
        clock: Arc<dyn Clock>,
        settings: ReconcilerSettings,
    ) -> Self {
        Self {
            resources: ResourceRepository::new(Arc::clone(&table)),
            leaks: LeakRepository::new(Arc::clone(&table)),
            requests: Arc::new(RequestRepository::new(
                Arc::clone(&table),
                Arc::clone(&clock),
            )),
            table,
            queue,
            task_queue,
            notification_queue,
            clock,
            settings,
            runner: None,
            notify: false,
            pacing: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// The worker's half: observe tasks run through `runner`'s drivers.
    pub fn with_runner(mut self, runner: Arc<TaskRunner>) -> Self {
        self.runner = Some(runner);
        self
    }

    /// Queue a chat notification at each drift transition.
    pub fn with_notifications(mut self, on: bool) -> Self {
        self.notify = on;
        self
    }

    pub fn settings(&self) -> &ReconcilerSettings {
        &self.settings
    }

    pub fn resources(&self) -> &ResourceRepository {
        &self.resources
    }

    pub fn leaks(&self) -> &LeakRepository {
        &self.leaks
    }

    pub(super) fn requests(&self) -> &RequestRepository {
        &self.requests
    }

    pub(super) fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    pub(super) fn queue(&self) -> &dyn Queue {
        &*self.queue
    }

    pub(super) fn task_queue(&self) -> &str {
        &self.task_queue
    }

    pub(super) fn runner(&self) -> Option<&Arc<TaskRunner>> {
        self.runner.as_ref()
    }

    /// Things one leak scan page lists: about one second of the provider's rate, so a page's
    /// calls are one short burst (at most about twice the rate, plus one) and the pages that
    /// follow wait for the slots those calls took.
    pub(super) fn scan_page(&self, provider: &str) -> usize {
        (self.settings.rate(provider).floor() as usize).clamp(1, MAX_SCAN_PAGE)
    }

    /// Makes sure each provider has its slots item, so the tick schedules its leak scans even
    /// before any of its resources was tracked (a crash before READY leaks too).
    pub async fn register_providers(&self, providers: &[&str]) -> Result<(), Error> {
        for provider in providers {
            match self
                .table
                .put(
                    ProviderSlots::default().item(provider, 0),
                    Condition::Absent,
                )
                .await
            {
                Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The provider's slots item as it is now (the default before its first write).
    async fn slots(&self, provider: &str) -> Result<ProviderSlots, Error> {
        Ok(self
            .table
            .get(&Key::new(PROVIDER_PARTITION, provider))
            .await?
            .map(|i| ProviderSlots::from_item(&i))
            .unwrap_or_default())
    }

    /// Writes `next` over `current` if nobody wrote since it was read: `false` when someone
    /// did (read again, or leave it to them).
    async fn replace_slots(
        &self,
        provider: &str,
        current: &ProviderSlots,
        next: &ProviderSlots,
    ) -> Result<bool, Error> {
        let version = current.version.map_or(1, |v| v + 1);
        match self
            .table
            .put(next.item(provider, version), current.condition())
            .await
        {
            Ok(()) => Ok(true),
            Err(StoreError::ConditionFailed { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Takes `calls` slots of `provider` from its next free one (a leak scan page's calls,
    /// made just now), so observation and scans share the rate; returns when they end.
    pub(super) async fn take_slots(
        &self,
        provider: &str,
        calls: u32,
        now_ms: i64,
    ) -> Result<i64, Error> {
        if calls == 0 {
            return Ok(now_ms);
        }
        let spacing_ms = 1000.0 / self.settings.rate(provider);
        for _ in 0..10 {
            let current = self.slots(provider).await?;
            let end =
                current.next_slot_ms.max(now_ms) + (f64::from(calls) * spacing_ms).round() as i64;
            let next = ProviderSlots {
                next_slot_ms: end,
                ..current.clone()
            };
            if self.replace_slots(provider, &current, &next).await? {
                return Ok(end);
            }
        }
        Err(Error::Unavailable(format!(
            "the {provider} provider's slots kept changing; the scan page runs again"
        )))
    }

    /// Claims the provider's leak scan when it is due (one conditional write, so two ticks
    /// never both start one) and queues its first page.
    async fn schedule_scan(
        &self,
        provider: &str,
        slots: &ProviderSlots,
        now_ms: i64,
    ) -> Result<bool, Error> {
        let Some(every) = self.settings.leak_scan_every else {
            return Ok(false);
        };
        if slots.next_scan_ms > now_ms {
            return Ok(false);
        }
        let claimed = ProviderSlots {
            next_scan_ms: now_ms + every.as_millis() as i64,
            ..slots.clone()
        };
        if !self.replace_slots(provider, slots, &claimed).await? {
            return Ok(false);
        }
        self.request_leak_scan(provider).await?;
        Ok(true)
    }

    fn next_due_ms(&self, id: &str, from: DateTime<Utc>, interval_seconds: u32) -> i64 {
        let interval_ms = i64::from(interval_seconds) * 1000;
        let from_ms = from.timestamp_millis();
        from_ms + interval_ms + jitter_ms(id, from_ms, interval_ms)
    }

    /// Starts tracking a READY request's resource (idempotent): first observed within a
    /// tenth of its interval, spread by its id.
    pub async fn track(&self, request: &crate::requests::ProvisioningRequest) -> Result<(), Error> {
        let interval_ms = i64::from(request.reconcile.interval_seconds) * 1000;
        let first = self.clock.now().timestamp_millis()
            + (jitter_ms(&request.id, 0, interval_ms) + interval_ms / 10).max(0);
        self.track_due_at(request, first).await
    }

    /// [`track`](Self::track), first observed at `first` (ms since the epoch).
    pub async fn track_due_at(
        &self,
        request: &crate::requests::ProvisioningRequest,
        first: i64,
    ) -> Result<(), Error> {
        if request.status != RequestStatus::Ready {
            return Ok(());
        }
        let now = self.clock.now();
        let state = ResourceState::new(request, now, first);
        self.resources.track(&state).await?;
        // The provider's slots item: the tick lists providers from these.
        match self
            .table
            .put(
                ProviderSlots::default().item(&request.resource_type, 0),
                Condition::Absent,
            )
            .await
        {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn providers(&self) -> Result<Vec<(String, ProviderSlots)>, Error> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .table
                .query(
                    PROVIDER_PARTITION,
                    &SortKeyRange::All,
                    after.as_deref(),
                    100,
                )
                .await?;
            for item in &page.items {
                out.push((item.key.sk.clone(), ProviderSlots::from_item(item)));
            }
            match page.last_sk {
                Some(sk) => after = Some(sk),
                None => return Ok(out),
            }
        }
    }

    /// One tick: queues the due observations of every provider, within its rate.
    pub async fn tick(&self) -> Result<TickReport, Error> {
        let mut report = TickReport::default();
        if !self.settings.enabled {
            return Ok(report);
        }
        for (provider, slots) in self.providers().await? {
            let now_ms = self.clock.now().timestamp_millis();
            if slots.paused_until_ms > now_ms {
                report.paused.push(provider);
                continue;
            }
            let slots = if self.schedule_scan(&provider, &slots, now_ms).await? {
                report.scans.push(provider.clone());
                self.slots(&provider).await?
            } else {
                slots
            };
            let queued = self.tick_provider(&provider, slots, now_ms).await?;
            report.queued.insert(provider, queued);
        }
        Ok(report)
    }

    async fn tick_provider(
        &self,
        provider: &str,
        slots: ProviderSlots,
        now_ms: i64,
    ) -> Result<usize, Error> {
        let spacing_ms = 1000.0 / self.settings.rate(provider);
        let start_ms = slots.next_slot_ms.max(now_ms);
        let horizon_ms = now_ms + self.settings.tick_period.as_millis() as i64;
        if start_ms >= horizon_ms {
            return Ok(0);
        }
        let capacity = (((horizon_ms - start_ms) as f64) / spacing_ms).floor() as usize;
        let mut due = self
            .resources
            .due(provider, slots.cursor.as_deref(), now_ms, capacity)
            .await?;
        let cursor = due
            .last()
            .map(|(sk, _)| sk.clone())
            .or(slots.cursor.clone());
        if due.len() < capacity && slots.cursor.is_some() {
            // Behind the cursor, long past their slot: their tasks were lost.
            let lost_before = now_ms - self.settings.lost_after.as_millis() as i64;
            let lost = self
                .resources
                .due(provider, None, lost_before, capacity - due.len())
                .await?;
            let seen: std::collections::HashSet<String> =
                due.iter().map(|(_, id)| id.clone()).collect();
            due.extend(lost.into_iter().filter(|(_, id)| !seen.contains(id)));
        }
        if due.is_empty() {
            return Ok(0);
        }
        let slot = |i: usize| start_ms + (i as f64 * spacing_ms).round() as i64;
        let claimed = ProviderSlots {
            next_slot_ms: slot(due.len()),
            cursor,
            ..slots.clone()
        };
        if !self.replace_slots(provider, &slots, &claimed).await? {
            // Another tick claimed these slots: it queues them.
            return Ok(0);
        }
        let messages = due
            .iter()
            .enumerate()
            .map(|(i, (_, id))| {
                let at = slot(i);
                let task = ObserveTask {
                    request_id: id.clone(),
                    resource_type: provider.to_owned(),
                    not_before_ms: at,
                    manual: false,
                };
                QueueMessage {
                    body: WorkerMessage::Observe(task).to_json(),
                    delay: Duration::from_millis(u64::try_from(at - now_ms).unwrap_or(0)),
                }
            })
            .collect();
        // The slots are claimed: a crash before this send leaves the resources behind the
        // cursor, and the next ticks queue them again once `lost_after` has passed.
        self.queue.send_batch(&self.task_queue, messages).await?;
        Ok(due.len())
    }

    /// Queues an observation now (a person asked): it does not wait for a slot.
    pub async fn request_observation(&self, state: &ResourceState) -> Result<(), Error> {
        let task = ObserveTask {
            request_id: state.id.clone(),
            resource_type: state.resource_type.clone(),
            not_before_ms: self.clock.now().timestamp_millis(),
            manual: true,
        };
        self.queue
            .send(
                &self.task_queue,
                QueueMessage::new(WorkerMessage::Observe(task).to_json()),
            )
            .await?;
        Ok(())
    }

    /// Pauses the provider's slots until `until` (its breaker opened).
    async fn pause(&self, provider: &str, until: DateTime<Utc>) -> Result<(), Error> {
        for _ in 0..5 {
            let current = self.slots(provider).await?;
            if current.paused_until_ms >= until.timestamp_millis() {
                return Ok(());
            }
            let next = ProviderSlots {
                paused_until_ms: until.timestamp_millis(),
                ..current.clone()
            };
            if self.replace_slots(provider, &current, &next).await? {
                tracing::warn!(provider, until = %until, "the provider's breaker opened: observation paused");
                return Ok(());
            }
        }
        Ok(())
    }

    /// Waits for the task's slot, and for this process's pace on its provider: SQS delays are
    /// whole seconds and a worker may fall behind, so neither a message visible early nor a
    /// backlog makes the provider see more than its rate.
    async fn pace(&self, task: &ObserveTask) {
        let spacing_us = (1e6 / self.settings.rate(&task.resource_type)).round() as i64;
        let now_us = self.clock.now().timestamp_micros();
        let start_us = {
            let mut pacing = self.pacing.lock();
            let next = pacing.entry(task.resource_type.clone()).or_insert(0);
            let start = (task.not_before_ms * 1000).max(*next).max(now_us);
            *next = start + spacing_us;
            start
        };
        let horizon_us = self.settings.tick_period.as_micros() as i64 * 2;
        let wait_us = (start_us - now_us).clamp(0, horizon_us);
        if wait_us > 0 {
            tokio::time::sleep(Duration::from_micros(wait_us as u64)).await;
        }
    }

    /// Runs one observe task: observe, record, and repair under `enforce`.
    pub async fn observe(
        &self,
        task: &ObserveTask,
        breakers: &CircuitBreakers,
    ) -> Result<Observed, Error> {
        self.pace(task).await;
        let request = match self.requests.get(&task.request_id).await {
            Ok(r) => r,
            Err(Error::NotFound(_)) => {
                if let Some(state) = self.resources.get(&task.request_id).await? {
                    self.resources.forget(&state).await?;
                }
                return Ok(Observed::Skipped("the request is gone"));
            }
            Err(e) => return Err(e),
        };
        let state = match self.resources.get(&request.id).await? {
            Some(s) => s,
            None if request.status == RequestStatus::Ready => {
                self.track(&request).await?;
                self.resources
                    .get(&request.id)
                    .await?
                    .ok_or_else(|| Error::Internal(format!("resource {} vanished", request.id)))?
            }
            None => return Ok(Observed::Skipped("the resource is not tracked")),
        };
        if request.status != RequestStatus::Ready {
            if request.status.releases_name() {
                self.resources.forget(&state).await?;
                return Ok(Observed::Skipped("the resource was deprovisioned"));
            }
            // Deprovisioning (or a failed deprovisioning): hands off, look again later.
            let mut next = state.clone();
            next.due_at_ms = self.next_due_ms(&state.id, self.clock.now(), state.interval_seconds);
            self.save_or_skip(&state, &mut next).await?;
            return Ok(Observed::Skipped("the resource is being deprovisioned"));
        }
        let Some(runner) = &self.runner else {
            return Err(Error::Internal(
                "this process has no drivers to observe with".into(),
            ));
        };
        let now = self.clock.now();
        let mut next = state.clone();
        next.due_at_ms = self.next_due_ms(&state.id, now, state.interval_seconds);
        let Some(driver) = runner.driver(&request.resource_type) else {
            next.set_condition(
                SYNCED,
                ConditionStatus::Unknown,
                "NoDriver",
                &format!("no driver for {} on this worker", request.resource_type),
                now,
            );
            return self.save_or_skip(&state, &mut next).await;
        };
        let spec = request.spec();
        let permit = match breakers.permit(&request.resource_type, now) {
            Permit::Allowed(p) => p,
            Permit::Refused { until } => {
                self.pause(&request.resource_type, until).await?;
                self.unknown(
                    &mut next,
                    "ProviderUnavailable",
                    &format!(
                        "the {} provider failed repeatedly; paved stops calling it until {until}",
                        request.resource_type
                    ),
                    now,
                );
                return self.save_or_skip(&state, &mut next).await;
            }
        };
        let observed = driver.observe(&spec).await;
        permit.report(&observed, now);
        let observation = match observed {
            Ok(o) => o,
            Err(e) => {
                if matches!(e, DriverError::Retryable { .. })
                    && let Permit::Refused { until } = breakers.permit(&request.resource_type, now)
                {
                    self.pause(&request.resource_type, until).await?;
                }
                self.unknown(&mut next, "ObserveFailed", &e.to_string(), now);
                return self.save_or_skip(&state, &mut next).await;
            }
        };
        let drift = relevant_drift(&observation, &state.ignore_fields);
        next.last_observed_at = Some(now);
        if drift.is_empty() {
            self.record_synced(
                &mut next,
                &observation,
                "Observed",
                "desired equals actual",
                now,
            );
            return self.save_and_tell(&state, &mut next, None, now).await;
        }
        if state.management_policy == ManagementPolicy::Observe {
            let event = self.record_drift(&mut next, &observation, drift, now);
            return self.save_and_tell(&state, &mut next, event, now).await;
        }
        // Enforce: repair through the task path, then look again.
        let repair = state.repairs + 1;
        let outputs = match self.repair(runner, &request, repair).await? {
            Repair::OtherReconciler => {
                return Ok(Observed::Skipped("another reconciler is repairing it"));
            }
            Repair::NotLive => return Ok(Observed::Skipped("the resource is being deprovisioned")),
            Repair::Failed(e) if matches!(e, DriverError::Retryable { .. }) => {
                // The provider is busy (a table still being created, a queue name held after
                // a delete): record the drift, and let the queue run the task again, which
                // repairs under the same number (its finished steps replay).
                self.record_drift(&mut next, &observation, drift, now);
                next.set_condition(
                    SYNCED,
                    ConditionStatus::False,
                    "RepairRetrying",
                    &format!("the repair will be retried: {e}"),
                    now,
                );
                self.save_and_tell(&state, &mut next, None, now).await?;
                return Err(Error::Unavailable(format!(
                    "repairing {} will be retried: {e}",
                    request.id
                )));
            }
            Repair::Failed(e) => {
                next.repairs = repair;
                let mut event = self.record_drift(&mut next, &observation, drift.clone(), now);
                next.set_condition(
                    SYNCED,
                    ConditionStatus::False,
                    "RepairFailed",
                    &e.to_string(),
                    now,
                );
                next.record(now, "repair_failed", e.to_string(), drift);
                if event.is_none() || event == Some(ChatEvent::Drifted) {
                    event = Some(ChatEvent::Unrepairable);
                    next.transitions += 1;
                }
                return self.save_and_tell(&state, &mut next, event, now).await;
            }
            Repair::Done(outputs) => outputs,
        };
        next.repairs = repair;
        let after = match driver.observe(&spec).await {
            Ok(o) => o,
            Err(e) => {
                self.unknown(
                    &mut next,
                    "ObserveFailed",
                    &format!("after the repair: {e}"),
                    now,
                );
                return self.save_and_tell(&state, &mut next, None, now).await;
            }
        };
        let left = relevant_drift(&after, &state.ignore_fields);
        let recreated = !observation.exists;
        if left.is_empty() {
            let what = if recreated { "recreated" } else { "repaired" };
            let finish = |next: &mut ResourceState| {
                next.repairs = repair;
                next.last_observed_at = Some(now);
                next.due_at_ms = self.next_due_ms(&next.id, now, next.interval_seconds);
                next.record(
                    now,
                    what,
                    format!(
                        "{} by re-applying its steps",
                        if recreated {
                            "recreated under its own name"
                        } else {
                            "drift repaired"
                        }
                    ),
                    drift.clone(),
                );
                self.record_synced(
                    next,
                    &after,
                    "Repaired",
                    "repaired: desired equals actual",
                    now,
                );
                next.transitions += 1;
            };
            finish(&mut next);
            let mut saved = self
                .save_and_tell(&state, &mut next, Some(ChatEvent::Repaired), now)
                .await?;
            // Another observation recorded meanwhile (it may have seen the repaired resource
            // as synced): the repair is this task's, so record it on what is there now.
            for _ in 0..5 {
                if matches!(saved, Observed::Recorded(_)) {
                    break;
                }
                let Some(fresh) = self.resources.get(&request.id).await? else {
                    break;
                };
                if fresh.repairs >= repair {
                    break;
                }
                let mut again = fresh.clone();
                finish(&mut again);
                saved = self
                    .save_and_tell(&fresh, &mut again, Some(ChatEvent::Repaired), now)
                    .await?;
            }

            if matches!(saved, Observed::Recorded(_)) {
                let message = format!("the reconciler {what} the resource (repair {repair})");
                // The repaired steps' outputs are the request's now (a re-pushed repository
                // has a new commit).
                self.requests
                    .update_retrying(&request.id, |r, at| {
                        for (step, out) in &outputs {
                            if let Some(s) = r.step_mut(step) {
                                s.outputs = out.clone();
                            }
                        }
                        let mut merged = Map::new();
                        for s in &r.steps {
                            if let Value::Object(o) = &s.outputs {
                                merged.extend(o.clone());
                            }
                        }
                        r.outputs = Value::Object(merged);
                        r.log(at, "repaired", message.clone());
                        Ok(())
                    })
                    .await?;
            }
            Ok(saved)
        } else {
            self.record_drift(&mut next, &after, left.clone(), now);
            next.set_condition(
                SYNCED,
                ConditionStatus::False,
                "Unrepairable",
                "re-applying the steps left drift",
                now,
            );
            next.record(
                now,
                "repair_failed",
                "re-applying the steps left drift".into(),
                left,
            );
            next.transitions += 1;
            self.save_and_tell(&state, &mut next, Some(ChatEvent::Unrepairable), now)
                .await
        }
    }

    fn unknown(&self, next: &mut ResourceState, reason: &str, message: &str, now: DateTime<Utc>) {
        if next.set_condition(SYNCED, ConditionStatus::Unknown, reason, message, now) {
            next.record(
                now,
                "observe_failed",
                format!("{reason}: {message}"),
                Vec::new(),
            );
        }
    }

    fn record_synced(
        &self,
        next: &mut ResourceState,
        observation: &Observation,
        reason: &str,
        message: &str,
        now: DateTime<Utc>,
    ) {
        let was_drifted = !next.drift.is_empty();
        next.drift.clear();
        next.drifted_since = None;
        next.set_condition(SYNCED, ConditionStatus::True, reason, message, now);
        next.set_condition(
            READY,
            if observation.exists {
                ConditionStatus::True
            } else {
                ConditionStatus::False
            },
            if observation.exists {
                "Exists"
            } else {
                "Missing"
            },
            "",
            now,
        );
        if was_drifted && reason == "Observed" {
            next.record(
                now,
                "drift_cleared",
                "desired equals actual again".into(),
                Vec::new(),
            );
        }
    }

    /// Records drift; returns the notification it deserves (only on the transition into
    /// drift, or when what drifted changed).
    fn record_drift(
        &self,
        next: &mut ResourceState,
        observation: &Observation,
        drift: Vec<Drift>,
        now: DateTime<Utc>,
    ) -> Option<ChatEvent> {
        let paths: Vec<&str> = drift.iter().map(|d| d.path.as_str()).collect();
        let message = format!("drift in {}", paths.join(", "));
        let changed = next.set_condition(SYNCED, ConditionStatus::False, "Drifted", &message, now);
        let (ready, reason) = if observation.exists {
            (ConditionStatus::True, "Exists")
        } else {
            (ConditionStatus::False, "Missing")
        };
        next.set_condition(
            READY,
            ready,
            reason,
            if observation.exists {
                ""
            } else {
                "the resource does not exist"
            },
            now,
        );
        let new_paths = next
            .drift
            .iter()
            .map(|d| d.path.as_str())
            .collect::<Vec<_>>()
            != paths;
        if next.drifted_since.is_none() {
            next.drifted_since = Some(now);
        }
        let event = (changed || new_paths).then(|| {
            next.record(now, "drift_detected", message.clone(), drift.clone());
            if changed {
                next.transitions += 1;
                Some(ChatEvent::Drifted)
            } else {
                None
            }
        });
        next.drift = drift;
        event.flatten()
    }

    async fn save_or_skip(
        &self,
        state: &ResourceState,
        next: &mut ResourceState,
    ) -> Result<Observed, Error> {
        match self.resources.save(state, next).await {
            Ok(()) => Ok(Observed::Recorded(Box::new(next.clone()))),
            Err(Error::Conflict(_)) => Ok(Observed::Skipped("another reconciler recorded first")),
            Err(e) => Err(e),
        }
    }

    async fn save_and_tell(
        &self,
        state: &ResourceState,
        next: &mut ResourceState,
        event: Option<ChatEvent>,
        now: DateTime<Utc>,
    ) -> Result<Observed, Error> {
        let saved = self.save_or_skip(state, next).await?;
        if let (Observed::Recorded(_), Some(event)) = (&saved, event) {
            tracing::info!(resource = %next.id, event = event.as_str(), at = %now, "resource transition");
            if self.notify {
                let note = ChatNotification {
                    request_id: next.id.clone(),
                    event,
                    sequence: Some(next.transitions),
                };
                self.queue
                    .send(&self.notification_queue, QueueMessage::new(note.to_json()))
                    .await?;
            }
        }
        Ok(saved)
    }

    async fn repair(
        &self,
        runner: &TaskRunner,
        request: &crate::requests::ProvisioningRequest,
        repair: u32,
    ) -> Result<Repair, Error> {
        let mut outputs = Vec::with_capacity(request.steps.len());
        for step in &request.steps {
            // A deprovisioning that started meanwhile wins: never re-create what is going.
            if self.requests.get(&request.id).await?.status != RequestStatus::Ready {
                return Ok(Repair::NotLive);
            }
            let task = TaskMessage {
                task_token: None,
                task_id: format!("{}/{}/repair-{repair}", request.id, step.id),
                resource_type: request.resource_type.clone(),
                step: step.id.clone(),
                action: TaskAction::Apply,
                spec: request.spec(),
            };
            match runner.run(&task).await? {
                TaskOutcome::Succeeded { outputs: out, .. } => outputs.push((step.id.clone(), out)),
                TaskOutcome::InProgress => return Ok(Repair::OtherReconciler),
                TaskOutcome::Failed(e) => return Ok(Repair::Failed(e)),
            }
        }
        Ok(Repair::Done(outputs))
    }
}

enum Repair {
    /// Every step re-applied, with its outputs.
    Done(Vec<(String, Value)>),
    OtherReconciler,
    NotLive,
    Failed(DriverError),
}

/// The drift that counts: the ignored paths left out, and a missing resource always drift.
fn relevant_drift(observation: &Observation, ignored: &[String]) -> Vec<Drift> {
    let mut drift: Vec<Drift> = observation
        .drift
        .iter()
        .filter(|d| !is_ignored(&d.path, ignored))
        .cloned()
        .collect();
    if !observation.exists && drift.is_empty() {
        drift.push(Drift {
            path: "exists".into(),
            desired: Value::Bool(true),
            actual: Value::Bool(false),
        });
    }
    drift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<ReconcilerSettings, String> {
        let pairs: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ReconcilerSettings::from_lookup(|k| pairs.get(k).cloned())
    }

    #[test]
    fn settings_default_parse_and_refuse_with_the_variable_named() {
        let d = settings(&[]).expect("defaults");
        assert_eq!(d, ReconcilerSettings::default());
        assert_eq!(d.leak_scan_every, Some(Duration::from_secs(24 * 3600)));
        let s = settings(&[
            ("PAVED_RECONCILE", "off"),
            ("PAVED_RECONCILE_RATE", "2.5"),
            ("PAVED_RECONCILE_RATES", "sqs-queue=10, postgres-database=1"),
            ("PAVED_RECONCILE_TICK_SECONDS", "5"),
            ("PAVED_LEAK_SCAN_HOURS", "6"),
        ])
        .expect("parsed");
        assert!(!s.enabled);
        assert_eq!(s.rate("service"), 2.5);
        assert_eq!(s.rate("sqs-queue"), 10.0);
        assert_eq!(s.rate("postgres-database"), 1.0);
        assert_eq!(s.tick_period, Duration::from_secs(5));
        assert_eq!(s.leak_scan_every, Some(Duration::from_secs(6 * 3600)));
        assert_eq!(
            settings(&[("PAVED_LEAK_SCAN_HOURS", "off")])
                .expect("off")
                .leak_scan_every,
            None
        );
        for (name, value) in [
            ("PAVED_RECONCILE", "maybe"),
            ("PAVED_RECONCILE_RATE", "0"),
            ("PAVED_RECONCILE_RATES", "sqs-queue"),
            ("PAVED_RECONCILE_TICK_SECONDS", "901"),
            ("PAVED_LEAK_SCAN_HOURS", "721"),
            ("PAVED_LEAK_SCAN_HOURS", "daily"),
        ] {
            let e = settings(&[(name, value)]).expect_err(value);
            assert!(e.contains(name), "{e}");
        }
    }
}
