//! A paved built in-process (the same `host::build` as `paved up`) on a temporary data
//! directory, served on a loopback port, with test drivers for fault injection.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use paved::host::{Background, HostConfig, Platform, build};
use paved_core::observation::{Found, InventoryPage, Observation};
use paved_core::ports::Queue;
use paved_core::provisioning::{Driver, DriverError, PlannedStep, Planner, ResourceSpec};
use paved_workflow::{
    NOTIFICATION_DEAD_LETTER_QUEUE, NOTIFICATION_QUEUE, TASK_DEAD_LETTER_QUEUE, TASK_QUEUE,
};
use provision_worker::embedded::{QueueBinding, poll_once};
use serde_json::{Value, json};

pub(crate) const SECRET: &str = "provisioning-test-secret-0123456789abcdef";

pub(crate) struct App {
    pub dir: tempfile::TempDir,
    pub platform: Platform,
    pub background: Option<Background>,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    server: tokio::task::JoinHandle<()>,
}

pub(crate) fn config(dir: &std::path::Path) -> HostConfig {
    let mut c = HostConfig::new(dir.to_path_buf());
    c.jwt_secret = Some(SECRET.into());
    c.retry_after = Duration::from_millis(200);
    c
}

/// Builds and serves the platform; `background` starts the worker pollers and timers.
pub(crate) async fn start_with(
    dir: tempfile::TempDir,
    config: HostConfig,
    background: bool,
) -> App {
    let platform = build(&config).await.expect("build the platform");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = platform.router.clone();
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let background = background.then(|| platform.start_background());
    let app = App {
        dir,
        platform,
        background,
        addr,
        http: reqwest::Client::new(),
        server,
    };
    app.seed().await;
    app
}

pub(crate) async fn start(extra: Vec<Arc<dyn Driver>>) -> App {
    let dir = tempfile::tempdir().expect("dir");
    let mut c = config(dir.path());
    c.extra_drivers = extra;
    start_with(dir, c, true).await
}

pub(crate) fn token(user: &str, groups: &[&str]) -> String {
    let groups: Vec<String> = groups.iter().map(|g| (*g).to_owned()).collect();
    paved_http::mint_token(SECRET.as_bytes(), user, &groups, 3600).expect("token")
}

pub(crate) fn admin() -> String {
    token("root", &["platform-admins"])
}
pub(crate) fn alice() -> String {
    token("alice", &["team-a"])
}
pub(crate) fn bob_approver() -> String {
    token("bob", &["team-b", "platform-approvers"])
}

/// A template for a test driver's resource type.
pub(crate) fn template(resource_type: &str, steps: &[&str]) -> String {
    let steps: Vec<String> = steps
        .iter()
        .map(|s| format!("    - {{id: {s}, name: {s}, action: 'test:{s}'}}"))
        .collect();
    format!(
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata:\n  name: {resource_type}\nspec:\n  type: {resource_type}\n  owner: platform-team\n  parameters:\n    - type: object\n      properties:\n        size: {{type: integer, minimum: 1, maximum: 10}}\n  steps:\n{}\n",
        steps.join("\n")
    )
}

impl App {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn seed(&self) {
        let yaml = "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team-a}\nspec: {type: team, children: []}\n---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team-b}\nspec: {type: team, children: []}\n---\napiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: platform-team}\nspec: {type: team, children: []}\n";
        let (status, body) = self.import(yaml).await;
        assert_eq!(status, 200, "{body}");
    }

    pub(crate) async fn import(&self, yaml: &str) -> (u16, Value) {
        let r = self
            .http
            .post(self.url("/v1/entities/import"))
            .bearer_auth(admin())
            .header("content-type", "application/yaml")
            .body(yaml.to_owned())
            .send()
            .await
            .expect("import");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        token: &str,
        body: &Value,
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut r = self.http.post(self.url(path)).bearer_auth(token).json(body);
        if let Some(k) = key {
            r = r.header("idempotency-key", k);
        }
        let r = r.send().await.expect("post");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn patch(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("patch");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("get");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .http
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("delete");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// Submits a request as alice and returns its id (asserting 202).
    pub(crate) async fn submit(&self, body: Value) -> String {
        let (status, r) = self.post("/v1/requests", &alice(), &body, None).await;
        assert_eq!(status, 202, "{r}");
        r["id"].as_str().expect("id").to_owned()
    }

    /// Waits until the request reaches one of `statuses`.
    pub(crate) async fn wait_for(&self, id: &str, statuses: &[&str], within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (status, r) = self.get(&format!("/v1/requests/{id}"), &admin()).await;
            assert_eq!(status, 200, "{r}");
            if statuses.contains(&r["status"].as_str().unwrap_or_default()) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "request {id} did not reach {statuses:?}: {r:#}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub(crate) fn queue(&self) -> Arc<dyn Queue> {
        Arc::clone(&self.platform.backend.queue)
    }

    /// Drives the worker by hand (no background pollers): one poll of each queue.
    pub(crate) async fn pump_once(&self) -> bool {
        let q = self.queue();
        let fast = |queue, dlq| QueueBinding {
            retry_after: Duration::ZERO,
            ..QueueBinding::new(queue, dlq, 5)
        };
        let tasks = poll_once(
            q.as_ref(),
            &self.platform.worker,
            &fast(TASK_QUEUE, TASK_DEAD_LETTER_QUEUE),
        )
        .await;
        let notes = poll_once(
            q.as_ref(),
            &self.platform.worker,
            &fast(NOTIFICATION_QUEUE, NOTIFICATION_DEAD_LETTER_QUEUE),
        )
        .await;
        tasks && notes
    }

    /// Runs, by hand, the task messages `pick` accepts (and every notification) until request
    /// `id` satisfies `until`; the other task messages stay queued, hidden meanwhile, and are
    /// visible again afterwards. Lets a test order two requests' tasks as a race would.
    pub(crate) async fn pump_only(
        &self,
        pick: impl Fn(&Value) -> bool,
        id: &str,
        until: impl Fn(&Value) -> bool,
    ) -> Value {
        let queue = self.queue();
        let notes = QueueBinding {
            retry_after: Duration::ZERO,
            ..QueueBinding::new(NOTIFICATION_QUEUE, NOTIFICATION_DEAD_LETTER_QUEUE, 5)
        };
        let mut held = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let finished = loop {
            for m in queue
                .receive(TASK_QUEUE, 10, Duration::from_secs(600))
                .await
                .expect("receive")
            {
                let body: Value = serde_json::from_str(&m.body).unwrap_or(Value::Null);
                if !pick(&body) {
                    held.push(m.receipt_handle);
                    continue;
                }
                let delivery = provision_worker::Delivery {
                    message_id: m.message_id.clone(),
                    body: m.body.clone(),
                    receive_count: 1,
                };
                if self
                    .platform
                    .worker
                    .handle_batch(&[delivery])
                    .await
                    .is_empty()
                {
                    queue
                        .delete(TASK_QUEUE, &m.receipt_handle)
                        .await
                        .expect("delete");
                } else {
                    queue
                        .change_visibility(TASK_QUEUE, &m.receipt_handle, Duration::ZERO)
                        .await
                        .expect("retry");
                }
            }
            poll_once(queue.as_ref(), &self.platform.worker, &notes).await;
            let (_, r) = self.get(&format!("/v1/requests/{id}"), &admin()).await;
            if until(&r) {
                break r;
            }
            assert!(
                Instant::now() < deadline,
                "request {id} did not get there: {r:#}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        for handle in held {
            queue
                .change_visibility(TASK_QUEUE, &handle, Duration::ZERO)
                .await
                .expect("release");
        }
        finished
    }

    pub(crate) async fn dead_letters(&self) -> Vec<String> {
        self.queue()
            // A peek: visible again at once.
            .receive(TASK_DEAD_LETTER_QUEUE, 10, Duration::ZERO)
            .await
            .expect("receive")
            .into_iter()
            .map(|m| m.body)
            .collect()
    }
}

/// What a test driver should do on each call of one step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Behaviour {
    Succeed,
    /// Fail with a retryable error this many times, then succeed.
    Transient(u32),
    /// Fail permanently.
    Permanent,
    /// Make the side effect, then crash (panic) once, as a worker killed before its ack.
    CrashAfterEffectOnce,
    /// Always panic.
    Panic,
}

/// A field changed by hand: `(path, desired, actual)`.
pub(crate) type HandChange = (String, Value, Value);

/// A driver that keeps its "resources" in memory: a set of created names, with a count of
/// side effects per step, so tests can check that nothing was made twice.
pub(crate) struct TestDriver {
    pub kind: &'static str,
    pub steps: Vec<&'static str>,
    pub behaviour: HashMap<&'static str, Behaviour>,
    /// The resources that exist, by `name/step`.
    pub created: Mutex<HashMap<String, u32>>,
    /// How many times `apply` ran per `name/step`.
    pub applies: Mutex<HashMap<String, u32>>,
    pub calls: AtomicU32,
    failures: Mutex<HashMap<String, u32>>,
    crashed: Mutex<bool>,
    /// Fields changed out of band, by resource name: `(path, desired, actual)`. An apply of
    /// the resource puts them back.
    pub drifted: Mutex<HashMap<String, Vec<HandChange>>>,
    /// The provider is down: every observation fails (retryable).
    pub outage: std::sync::atomic::AtomicBool,
    /// How many observations ran.
    pub observations: AtomicU32,
    /// The request that made each resource, by `name/step`: its marker.
    pub markers: Mutex<std::collections::BTreeMap<String, String>>,
}

impl TestDriver {
    pub(crate) fn new(
        kind: &'static str,
        steps: &[&'static str],
        behaviour: &[(&'static str, Behaviour)],
    ) -> Arc<Self> {
        Arc::new(Self {
            kind,
            steps: steps.to_vec(),
            behaviour: behaviour.iter().copied().collect(),
            created: Mutex::new(HashMap::new()),
            applies: Mutex::new(HashMap::new()),
            calls: AtomicU32::new(0),
            failures: Mutex::new(HashMap::new()),
            crashed: Mutex::new(false),
            drifted: Mutex::new(HashMap::new()),
            outage: std::sync::atomic::AtomicBool::new(false),
            observations: AtomicU32::new(0),
            markers: Mutex::new(std::collections::BTreeMap::new()),
        })
    }

    /// How many times `apply` ran for `step` of `name`.
    pub(crate) fn applies(&self, name: &str, step: &str) -> u32 {
        self.applies
            .lock()
            .get(&format!("{name}/{step}"))
            .copied()
            .unwrap_or(0)
    }

    /// How many copies of `step`'s resource exist for `name` (1 is right, never 2).
    pub(crate) fn copies(&self, name: &str, step: &str) -> u32 {
        self.created
            .lock()
            .get(&format!("{name}/{step}"))
            .copied()
            .unwrap_or(0)
    }

    /// How many resources exist in all.
    pub(crate) fn live(&self) -> usize {
        self.created.lock().len()
    }
}

impl Planner for TestDriver {
    fn resource_type(&self) -> &'static str {
        self.kind
    }

    fn plan(&self, spec: &ResourceSpec) -> Result<Vec<PlannedStep>, DriverError> {
        Ok(self
            .steps
            .iter()
            .map(|s| PlannedStep {
                step: (*s).into(),
                action: format!("make {}/{s}", spec.name),
            })
            .collect())
    }
}

#[async_trait]
impl Driver for TestDriver {
    async fn apply(&self, spec: &ResourceSpec, step: &str) -> Result<Value, DriverError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let key = format!("{}/{step}", spec.name);
        *self.applies.lock().entry(key.clone()).or_insert(0) += 1;
        match self
            .behaviour
            .get(step)
            .copied()
            .unwrap_or(Behaviour::Succeed)
        {
            Behaviour::Permanent => {
                return Err(DriverError::NonRetryable {
                    code: "NonRetryable.TestRefused",
                    message: format!("{step} is refused"),
                });
            }
            Behaviour::Panic => panic!("the {step} driver crashed"),
            Behaviour::Transient(n) => {
                let mut f = self.failures.lock();
                let seen = f.entry(key.clone()).or_insert(0);
                if *seen < n {
                    *seen += 1;
                    return Err(DriverError::Retryable {
                        code: "Retryable.Throttled",
                        message: format!("{step}: busy, try later"),
                    });
                }
            }
            Behaviour::Succeed | Behaviour::CrashAfterEffectOnce => {}
        }
        self.drifted.lock().remove(&spec.name);
        // Deterministic name: the step finds its own earlier work.
        {
            let mut created = self.created.lock();
            let n = created.entry(key.clone()).or_insert(0);
            if *n == 0 {
                *n = 1;
                self.markers
                    .lock()
                    .insert(key.clone(), spec.request_id.clone());
            }
        }
        if self.behaviour.get(step) == Some(&Behaviour::CrashAfterEffectOnce) {
            let mut crashed = self.crashed.lock();
            if !*crashed {
                *crashed = true;
                drop(crashed);
                panic!("killed after the side effect of {step}, before the answer");
            }
        }
        Ok(json!({ step: key }))
    }

    async fn undo(&self, spec: &ResourceSpec, step: &str) -> Result<(), DriverError> {
        let key = format!("{}/{step}", spec.name);
        self.created.lock().remove(&key);
        self.markers.lock().remove(&key);
        Ok(())
    }

    async fn status(&self, spec: &ResourceSpec) -> Result<Option<Value>, DriverError> {
        Ok((self.copies(&spec.name, self.steps[0]) > 0).then(|| json!({})))
    }

    async fn delete(&self, spec: &ResourceSpec) -> Result<(), DriverError> {
        for s in &self.steps {
            let key = format!("{}/{s}", spec.name);
            self.created.lock().remove(&key);
            self.markers.lock().remove(&key);
        }
        Ok(())
    }

    async fn inventory(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<InventoryPage, DriverError> {
        if self.outage.load(Ordering::SeqCst) {
            return Err(DriverError::Retryable {
                code: "Retryable.Unavailable",
                message: "the test provider is down".into(),
            });
        }
        let markers = self.markers.lock();
        let mut found: Vec<Found> = markers
            .iter()
            .filter(|(key, _)| after.is_none_or(|a| key.as_str() > a))
            .take(limit + 1)
            .map(|(key, id)| {
                let (name, step) = key.split_once('/').unwrap_or((key, ""));
                Found {
                    kind: step.to_owned(),
                    name: name.to_owned(),
                    request_id: Some(id.clone()),
                }
            })
            .collect();
        let more = found.len() > limit;
        found.truncate(limit);
        Ok(InventoryPage {
            next: more
                .then(|| found.last().map(|f| format!("{}/{}", f.name, f.kind)))
                .flatten(),
            calls: 1,
            found,
        })
    }

    async fn remove_found(&self, spec: &ResourceSpec, found: &Found) -> Result<(), DriverError> {
        let key = format!("{}/{}", found.name, found.kind);
        let mut markers = self.markers.lock();
        match markers.get(&key) {
            None => Ok(()),
            Some(id) if *id == spec.request_id => {
                markers.remove(&key);
                self.created.lock().remove(&key);
                Ok(())
            }
            Some(_) => Err(DriverError::NonRetryable {
                code: "NonRetryable.NotOwned",
                message: format!("{key} is another request's"),
            }),
        }
    }

    async fn observe(&self, spec: &ResourceSpec) -> Result<Observation, DriverError> {
        self.observations.fetch_add(1, Ordering::SeqCst);
        if self.outage.load(Ordering::SeqCst) {
            return Err(DriverError::Retryable {
                code: "Retryable.Unavailable",
                message: "the test provider is down".into(),
            });
        }
        let mut seen = Observation {
            exists: self.copies(&spec.name, self.steps[0]) > 0,
            calls: 1,
            ..Observation::default()
        };
        for step in &self.steps {
            let present = self.copies(&spec.name, step) > 0;
            seen.compare(&format!("steps.{step}"), json!(true), json!(present));
        }
        for (path, desired, actual) in self.drifted.lock().get(&spec.name).into_iter().flatten() {
            seen.compare(path, desired.clone(), actual.clone());
        }
        Ok(seen)
    }
}

/// A request body for a test type.
pub(crate) fn request(template: &str, name: &str, environment: &str) -> Value {
    json!({"template": template, "name": name, "owner": "team-a", "environment": environment, "parameters": {}})
}
