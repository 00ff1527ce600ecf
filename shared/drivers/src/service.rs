//! The `service` driver: a new service repository from a skeleton (Rust axum or Python
//! FastAPI, each with `catalog-info.yaml`, a CI workflow and a README), pushed to a new bare
//! git repository under the configured git root and registered in the catalog.
//!
//! Steps: `render` (the skeleton into `<git root>/.staging/<name>`), `repository`
//! (`<git root>/<name>.git`, main branch pushed once), `register` (the catalog-info.yaml
//! entity, annotated with the request id). git runs as a program with arguments, never
//! through a shell, on tokio's processes (never blocking the runtime), each run bounded by a
//! timeout that kills git and what it started.
//!
//! Ownership ([`crate::ownership`]): the bare repository carries `paved.requestId` in its
//! git config. It is made under a path of the request's own
//! (`<git root>/.staging/<name>.<token>.git`), marked and pushed there, and only then renamed
//! to `<git root>/<name>.git`. A repository there without this request's marker is
//! `NonRetryable.NameTaken` and is never adopted, undone or deleted.
//!
//! Applying every step again, in plan order, repairs a repository deleted by hand (the
//! reconciliation loop's `enforce`): `render` renders the skeleton afresh, `repository` finds
//! the real path free and makes, marks, pushes and renames a new one there, as the first time,
//! and `register` writes the same Component again (this request's own, by its annotation), so
//! the catalog entry and the repository at its deterministic path belong together again. A
//! repository that is this request's keeps its history: main is pushed only where it is
//! missing, so the team's commits are never overwritten.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use minijinja::Environment;
use paved_core::catalog::{
    CatalogRepository, EntityRef, EntityView, PlatformWriter, RefDefaults, ServiceComponent,
    parse_documents,
};
use paved_core::observation::{Found, InventoryPage, Observation};
use paved_core::provisioning::{Driver, DriverError, PlannedStep, Planner, ResourceSpec};
use serde_json::{Value, json};

use crate::ownership::Holder;

pub const RESOURCE_TYPE: &str = "service";
const STEPS: [&str; 3] = ["render", "repository", "register"];
const REQUEST_ANNOTATION: &str = "paved.dev/request-id";
/// The git config entry that names the request a bare repository was made for.
const MARKER_KEY: &str = "paved.requestId";
/// How long one git command may run (a local push of a skeleton takes well under a second).
pub const DEFAULT_GIT_TIMEOUT: Duration = Duration::from_secs(120);

/// `(path in the new repository, template source)` per skeleton.
fn skeleton(language: &str) -> Option<Vec<(&'static str, &'static str)>> {
    let common = [
        (
            "catalog-info.yaml",
            include_str!("../skeletons/common/catalog-info.yaml"),
        ),
        ("README.md", include_str!("../skeletons/common/README.md")),
    ];
    let files: Vec<(&str, &str)> = match language {
        "rust-axum" => vec![
            (
                "Cargo.toml",
                include_str!("../skeletons/rust-axum/Cargo.toml"),
            ),
            (
                "src/main.rs",
                include_str!("../skeletons/rust-axum/src/main.rs"),
            ),
            (
                ".github/workflows/ci.yml",
                include_str!("../skeletons/rust-axum/ci.yml"),
            ),
        ],
        "python-fastapi" => vec![
            (
                "pyproject.toml",
                include_str!("../skeletons/python-fastapi/pyproject.toml"),
            ),
            (
                "app/main.py",
                include_str!("../skeletons/python-fastapi/app/main.py"),
            ),
            (
                ".github/workflows/ci.yml",
                include_str!("../skeletons/python-fastapi/ci.yml"),
            ),
        ],
        _ => return None,
    };
    Some(files.into_iter().chain(common).collect())
}

/// What a request would create, checked without rendering anything: a known skeleton and a
/// valid owner. Rendering needs minijinja, and only the worker renders.
#[derive(Debug)]
pub struct ServicePlanner {
    git_root: PathBuf,
}

impl ServicePlanner {
    /// `git_root` as for [`ServiceDriver::new`].
    pub fn new(git_root: PathBuf) -> Self {
        Self { git_root }
    }

    fn repository(&self, spec: &ResourceSpec) -> PathBuf {
        self.git_root.join(format!("{}.git", spec.name))
    }
}

/// A request's skeleton and owner, checked.
struct CheckedInputs<'a> {
    language: &'a str,
    /// `(path, template source)`, as [`skeleton`] lists them.
    files: Vec<(&'static str, &'static str)>,
    owner: EntityRef,
}

/// The request's skeleton and owner, or why they are refused.
fn checked_inputs(spec: &ResourceSpec) -> Result<CheckedInputs<'_>, DriverError> {
    let language = spec
        .parameters
        .get("language")
        .and_then(Value::as_str)
        .unwrap_or("");
    let files = skeleton(language).ok_or_else(|| {
        permanent(
            "NonRetryable.InvalidParameters",
            format!("language '{language}' is not a skeleton; use rust-axum or python-fastapi"),
        )
    })?;
    let owner = EntityRef::parse(
        &spec.owner,
        RefDefaults {
            kind: Some("group"),
            namespace: "default",
        },
    )
    .map_err(|m| permanent("NonRetryable.InvalidParameters", m))?;
    Ok(CheckedInputs {
        language,
        files,
        owner,
    })
}

#[derive(Debug)]
pub struct ServiceDriver {
    planner: ServicePlanner,
    catalog: Arc<CatalogRepository>,
    git_program: PathBuf,
    git_timeout: Duration,
}

fn permanent(code: &'static str, message: impl Into<String>) -> DriverError {
    DriverError::NonRetryable {
        code,
        message: message.into(),
    }
}

/// The catalog's read model could not catch up with its change log (the store failed).
fn catalog_unreadable(e: paved_core::Error) -> DriverError {
    DriverError::Retryable {
        code: "Retryable.Catalog",
        message: e.to_string(),
    }
}

fn io(e: std::io::Error) -> DriverError {
    DriverError::Retryable {
        code: "Retryable.Filesystem",
        message: e.to_string(),
    }
}

/// Runs `program` (git) with arguments (no shell) in `dir`, failing with its stderr. It runs in
/// a process group of its own: past `timeout` the whole group (git and the helpers and hooks
/// it started) is killed and the run is a retryable failure.
async fn run_git(
    program: &Path,
    dir: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<std::process::Output, DriverError> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = command.spawn().map_err(|e| {
        permanent(
            "NonRetryable.GitMissing",
            format!("git could not be run: {e}"),
        )
    })?;
    let group = child.id().and_then(|id| i32::try_from(id).ok());
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(io(e)),
        Err(_) => {
            // Dropping the future killed git itself (kill_on_drop); its group goes too.
            if let Some(pid) = group
                .filter(|&p| p > 1)
                .and_then(rustix::process::Pid::from_raw)
            {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            Err(DriverError::Retryable {
                code: "Retryable.Filesystem",
                message: format!(
                    "git {} did not finish within {timeout:?} and was killed",
                    args.join(" ")
                ),
            })
        }
    }
}

/// Runs git, failing with its stderr unless it succeeds.
async fn git(
    program: &Path,
    dir: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<String, DriverError> {
    let out = run_git(program, dir, args, timeout).await?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(permanent(
            "NonRetryable.GitFailed",
            format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ))
    }
}

impl ServiceDriver {
    pub fn new(git_root: PathBuf, catalog: Arc<CatalogRepository>) -> Self {
        Self {
            planner: ServicePlanner::new(git_root),
            catalog,
            git_program: PathBuf::from("git"),
            git_timeout: DEFAULT_GIT_TIMEOUT,
        }
    }

    /// Another bound on each git command than [`DEFAULT_GIT_TIMEOUT`].
    pub fn with_git_timeout(mut self, timeout: Duration) -> Self {
        self.git_timeout = timeout;
        self
    }

    async fn git(&self, dir: &Path, args: &[&str]) -> Result<String, DriverError> {
        git(&self.git_program, dir, args, self.git_timeout).await
    }

    /// The rendered skeleton's work tree: this request's own.
    fn staging(&self, spec: &ResourceSpec) -> PathBuf {
        self.planner.git_root.join(".staging").join(format!(
            "{}.{}",
            spec.name,
            crate::ownership::request_token(&spec.request_id)
        ))
    }

    /// Where the bare repository is made and marked before it takes its real path.
    fn pending(&self, spec: &ResourceSpec) -> PathBuf {
        self.planner.git_root.join(".staging").join(format!(
            "{}.{}.git",
            spec.name,
            crate::ownership::request_token(&spec.request_id)
        ))
    }

    fn repository(&self, spec: &ResourceSpec) -> PathBuf {
        self.planner.repository(spec)
    }

    /// What exists of the service and how it differs from what was provisioned: the bare
    /// repository with paved's marker, and its catalog Component carrying this request's id
    /// and owner. Commits to the repository are the team's work, never drift. Read-only.
    async fn observation(&self, spec: &ResourceSpec) -> Result<Observation, DriverError> {
        let bare = self.repository(spec);
        let mut seen = Observation {
            calls: 2,
            ..Observation::default()
        };
        match self.holder(&bare, &spec.request_id).await? {
            Holder::Ours => seen.exists = true,
            Holder::Absent => {
                seen.compare("repository", json!(bare.display().to_string()), Value::Null);
            }
            Holder::Other(marker) => seen.compare(
                &format!("repository.{MARKER_KEY}"),
                json!(spec.request_id),
                marker.map_or(Value::Null, Value::String),
            ),
        }
        let entity_ref = entity_ref(spec);
        let index = self.catalog.fresh().await.map_err(catalog_unreadable)?;
        match index.get_by_ref(&entity_ref) {
            None => seen.compare("component", json!(entity_ref.to_string()), Value::Null),
            Some(view) => {
                let entity: Value = serde_json::from_slice(&view.json).unwrap_or(Value::Null);
                seen.compare(
                    &format!("component.metadata.annotations.{REQUEST_ANNOTATION}"),
                    json!(spec.request_id),
                    entity
                        .pointer("/metadata/annotations")
                        .and_then(|a| a.get(REQUEST_ANNOTATION))
                        .cloned()
                        .unwrap_or(Value::Null),
                );
                let desired_owner = EntityRef::parse(
                    &spec.owner,
                    RefDefaults {
                        kind: Some("group"),
                        namespace: "default",
                    },
                )
                .map(|r| r.key())
                .unwrap_or_else(|_| spec.owner.to_lowercase());
                seen.compare(
                    "component.spec.owner",
                    json!(desired_owner),
                    view.owner.as_ref().map_or(Value::Null, |o| json!(o.key())),
                );
            }
        }
        Ok(seen)
    }

    /// Who made the repository at `bare`: absent, this request, or someone else (another
    /// request's marker, or none: not a repository paved made). Reads only the repository's
    /// own config file, with no includes followed and nothing of the repository run.
    async fn holder(&self, bare: &Path, request_id: &str) -> Result<Holder, DriverError> {
        match std::fs::symlink_metadata(bare) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Holder::Absent),
            Err(e) => return Err(io(e)),
            Ok(meta) if !meta.is_dir() => return Ok(Holder::Other(None)),
            Ok(_) => {}
        }
        let config = bare.join("config");
        if !std::fs::symlink_metadata(&config).is_ok_and(|m| m.is_file()) {
            return Ok(Holder::Other(None));
        }
        let config = config.to_string_lossy().into_owned();
        let out = run_git(
            &self.git_program,
            &self.planner.git_root,
            &["config", "--file", &config, "--get", MARKER_KEY],
            self.git_timeout,
        )
        .await?;
        let marker = match out.status.code() {
            Some(0) => Some(String::from_utf8_lossy(&out.stdout).trim().to_owned()),
            // 1: the key is not there.
            Some(1) => None,
            _ => {
                return Err(permanent(
                    "NonRetryable.GitFailed",
                    format!(
                        "git config --file {config}: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                ));
            }
        };
        Ok(Holder::of(Some(marker), request_id))
    }

    /// The bare repository under its real path, made, marked and pushed under the pending
    /// path first; returns its path.
    async fn create_repository(&self, spec: &ResourceSpec) -> Result<PathBuf, DriverError> {
        let bare = self.repository(spec);
        let what = format!("the repository {}", bare.display());
        let ours = self
            .holder(&bare, &spec.request_id)
            .await?
            .for_create(&what)?;
        let target = if ours {
            bare.clone()
        } else {
            let pending = self.pending(spec);
            if self.holder(&pending, &spec.request_id).await? != Holder::Ours {
                // Left by a crash of this request's before its marker was written.
                remove_dir(&pending)?;
                std::fs::create_dir_all(&pending).map_err(io)?;
                self.git(
                    &pending,
                    &["init", "--quiet", "--bare", "--initial-branch=main"],
                )
                .await?;
                self.git(
                    &pending,
                    &["config", "--local", MARKER_KEY, &spec.request_id],
                )
                .await?;
            }
            pending
        };
        self.push(spec, &target).await?;
        if target != bare {
            match self
                .holder(&bare, &spec.request_id)
                .await?
                .for_create(&what)?
            {
                // A twin attempt got there first.
                true => remove_dir(&target)?,
                false => std::fs::rename(&target, &bare).map_err(io)?,
            }
        }
        Ok(bare)
    }

    /// Pushes the rendered skeleton to `bare` unless main is there already (a retried step).
    async fn push(&self, spec: &ResourceSpec, bare: &Path) -> Result<(), DriverError> {
        let pushed = self
            .git(
                bare,
                &["rev-parse", "--verify", "--quiet", "refs/heads/main"],
            )
            .await
            .is_ok();
        if pushed {
            return Ok(());
        }
        let staging = self.staging(spec);
        if !staging.join("catalog-info.yaml").exists() {
            return Err(DriverError::Retryable {
                code: "Retryable.NotRendered",
                message: "the render step has not run".into(),
            });
        }
        let staging_git = staging.join(".git");
        if staging_git.exists() {
            std::fs::remove_dir_all(&staging_git).map_err(io)?;
        }
        self.git(&staging, &["init", "--quiet", "--initial-branch=main"])
            .await?;
        self.git(&staging, &["add", "--all"]).await?;
        self.git(
            &staging,
            &[
                "-c",
                "user.name=paved",
                "-c",
                "user.email=paved@localhost",
                "commit",
                "--quiet",
                "-m",
                "Create the service from the paved golden path",
            ],
        )
        .await?;
        let target = bare.to_string_lossy().into_owned();
        self.git(&staging, &["push", "--quiet", &target, "main"])
            .await?;
        Ok(())
    }

    fn render(&self, spec: &ResourceSpec) -> Result<Vec<(String, String)>, DriverError> {
        let CheckedInputs {
            language,
            files,
            owner,
        } = checked_inputs(spec)?;
        let (tag, run) = if language == "rust-axum" {
            ("rust", "`cargo run`, then `curl localhost:3000/healthz`.")
        } else {
            (
                "python",
                "`pip install -e '.[test]'`, then `uvicorn app.main:app`.",
            )
        };
        let context = json!({
            "name": spec.name,
            "description": spec.parameters.get("description").and_then(Value::as_str).unwrap_or("A new service."),
            "owner": owner.to_string(),
            "system": spec.parameters.get("system").and_then(Value::as_str),
            "language": language,
            "language_tag": tag,
            "request_id": spec.request_id,
            "run_instructions": run,
        });
        let env = Environment::new();
        let context = minijinja::Value::from(minijinja::value::Serde(context));
        files
            .into_iter()
            .map(|(path, source)| {
                let mut text = env
                    .render_str(source, context.clone())
                    .map_err(|e| permanent("NonRetryable.TemplateError", format!("{path}: {e}")))?;
                // Templates drop their final newline when rendered; files keep one.
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                Ok((path.to_owned(), text))
            })
            .collect()
    }
}

fn entity_ref(spec: &ResourceSpec) -> EntityRef {
    EntityRef::new("component", "default", &spec.name)
}

impl Planner for ServicePlanner {
    fn resource_type(&self) -> &'static str {
        RESOURCE_TYPE
    }

    fn plan(&self, spec: &ResourceSpec) -> Result<Vec<PlannedStep>, DriverError> {
        let files = checked_inputs(spec)?.files;
        Ok(vec![
            PlannedStep {
                step: "render".into(),
                action: format!(
                    "render {} files: {}",
                    files.len(),
                    files
                        .iter()
                        .map(|(path, _)| *path)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            },
            PlannedStep {
                step: "repository".into(),
                action: format!("create {} and push main", self.repository(spec).display()),
            },
            PlannedStep {
                step: "register".into(),
                action: format!("register {} in the catalog", entity_ref(spec)),
            },
        ])
    }
}

impl Planner for ServiceDriver {
    fn resource_type(&self) -> &'static str {
        RESOURCE_TYPE
    }

    fn plan(&self, spec: &ResourceSpec) -> Result<Vec<PlannedStep>, DriverError> {
        self.planner.plan(spec)
    }
}

#[async_trait]
impl Driver for ServiceDriver {
    async fn apply(&self, spec: &ResourceSpec, step: &str) -> Result<Value, DriverError> {
        match step {
            "render" => {
                let files = self.render(spec)?;
                let dir = self.staging(spec);
                if dir.exists() {
                    std::fs::remove_dir_all(&dir).map_err(io)?;
                }
                for (path, text) in &files {
                    let target = dir.join(path);
                    if let Some(parent) = target.parent() {
                        std::fs::create_dir_all(parent).map_err(io)?;
                    }
                    std::fs::write(&target, text).map_err(io)?;
                }
                Ok(json!({"files": files.iter().map(|(p, _)| p).collect::<Vec<_>>()}))
            }
            "repository" => {
                let bare = self.create_repository(spec).await?;
                let head = self.git(&bare, &["rev-parse", "refs/heads/main"]).await?;
                Ok(json!({"repository": bare.display().to_string(), "commit": head}))
            }
            "register" => {
                let text = std::fs::read_to_string(self.staging(spec).join("catalog-info.yaml"))
                    .map_err(io)?;
                let entity_ref = entity_ref(spec);
                let taken = self
                    .catalog
                    .fresh()
                    .await
                    .map_err(catalog_unreadable)?
                    .get_by_ref(&entity_ref)
                    .is_some_and(|existing| !created_by(existing, &spec.request_id));
                if taken {
                    return Err(permanent(
                        "NonRetryable.NameTaken",
                        format!("{entity_ref} already exists in the catalog"),
                    ));
                }
                let documents = parse_documents(&text)
                    .map_err(|e| permanent("NonRetryable.TemplateError", e.to_string()))?;
                let owner = checked_inputs(spec)?.owner;
                let expected = ServiceComponent {
                    entity_ref: &entity_ref,
                    owner: &owner,
                    request_annotation: REQUEST_ANNOTATION,
                    request_id: &spec.request_id,
                };
                self.catalog
                    .register_service_component(documents, &expected)
                    .await
                    .map_err(|e| permanent("NonRetryable.CatalogRefused", catalog_refusal(&e)))?;
                Ok(json!({"entityRef": entity_ref.to_string()}))
            }
            other => Err(permanent(
                "NonRetryable.UnknownStep",
                format!(
                    "{RESOURCE_TYPE} has no step '{other}'; its steps are {}",
                    STEPS.join(", ")
                ),
            )),
        }
    }

    async fn undo(&self, spec: &ResourceSpec, step: &str) -> Result<(), DriverError> {
        match step {
            "register" => {
                let uid = {
                    let index = self.catalog.fresh().await.map_err(catalog_unreadable)?;
                    index
                        .get_by_ref(&entity_ref(spec))
                        .filter(|v| created_by(v, &spec.request_id))
                        .map(|v| v.uid.clone())
                };
                if let Some(uid) = uid {
                    match self.catalog.delete_by_uid(&uid, &PlatformWriter).await {
                        Ok(_) | Err(paved_core::Error::NotFound(_)) => {}
                        Err(e) => {
                            return Err(DriverError::Retryable {
                                code: "Retryable.Catalog",
                                message: e.to_string(),
                            });
                        }
                    }
                }
                Ok(())
            }
            "repository" => {
                // The pending path is this request's own.
                remove_dir(&self.pending(spec))?;
                let bare = self.repository(spec);
                let what = format!("the repository {}", bare.display());
                if self
                    .holder(&bare, &spec.request_id)
                    .await?
                    .for_removal(&what)?
                {
                    remove_dir(&bare)?;
                }
                Ok(())
            }
            "render" => remove_dir(&self.staging(spec)),
            other => Err(permanent(
                "NonRetryable.UnknownStep",
                format!("no step '{other}' to undo"),
            )),
        }
    }

    async fn status(&self, spec: &ResourceSpec) -> Result<Option<Value>, DriverError> {
        let bare = self.repository(spec);
        let registered = self
            .catalog
            .fresh()
            .await
            .map_err(catalog_unreadable)?
            .get_by_ref(&entity_ref(spec))
            .is_some_and(|v| created_by(v, &spec.request_id));
        let ours = self.holder(&bare, &spec.request_id).await? == Holder::Ours;
        Ok((ours && registered).then(|| json!({"repository": bare.display().to_string(), "entityRef": entity_ref(spec).to_string()})))
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
        self.remove_repository(spec, found).await
    }

    async fn delete(&self, spec: &ResourceSpec) -> Result<(), DriverError> {
        for step in STEPS.iter().rev() {
            self.undo(spec, step).await?;
        }
        Ok(())
    }
}

impl ServiceDriver {
    /// A page of the bare repositories under the git root (`<name>.git`) and of the pending
    /// ones (`.staging/<name>.<token>.git`) that carry paved's marker; a pending one is paved's
    /// by its path alone, marked or not (a crash between `git init` and the marker). Names
    /// are paths relative to the git root, in order; each marker is one read of a config file.
    async fn inventory_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<InventoryPage, DriverError> {
        let root = &self.planner.git_root;
        let mut names = Vec::new();
        for (dir, prefix) in [(root.clone(), ""), (root.join(".staging"), ".staging/")] {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(e)),
            };
            for entry in entries {
                let entry = entry.map_err(io)?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.ends_with(".git") && entry.file_type().map_err(io)?.is_dir() {
                    names.push(format!("{prefix}{name}"));
                }
            }
        }
        names.sort();
        names.retain(|n| after.is_none_or(|a| n.as_str() > a));
        let more = names.len() > limit.max(1);
        names.truncate(limit.max(1));
        let mut page = InventoryPage {
            calls: 1,
            next: if more { names.last().cloned() } else { None },
            ..InventoryPage::default()
        };
        for name in names {
            page.calls += 1;
            let pending = name.starts_with(".staging/");
            match self.holder(&root.join(&name), "").await? {
                Holder::Other(Some(id)) => page.found.push(Found {
                    kind: "repository".into(),
                    name,
                    request_id: Some(id),
                }),
                Holder::Other(None) if pending => page.found.push(Found {
                    kind: "repository".into(),
                    name,
                    request_id: None,
                }),
                _ => {}
            }
        }
        Ok(page)
    }

    /// Removes the repository `found` names if its marker names `spec`'s request.
    async fn remove_repository(
        &self,
        spec: &ResourceSpec,
        found: &Found,
    ) -> Result<(), DriverError> {
        let plain = |n: &str| {
            n.ends_with(".git") && !n.starts_with('.') && !n.contains(['/', '\\']) && n != ".git"
        };
        let ok = found.kind == "repository"
            && match found.name.strip_prefix(".staging/") {
                Some(rest) => plain(rest),
                None => plain(&found.name),
            };
        if !ok {
            return Err(crate::ownership::not_owned(format!(
                "the {} {} is not a repository paved makes; it is left alone",
                found.kind, found.name
            )));
        }
        let path = self.planner.git_root.join(&found.name);
        let what = format!("the repository {}", path.display());
        if self
            .holder(&path, &spec.request_id)
            .await?
            .for_removal(&what)?
        {
            remove_dir(&path)?;
        }
        Ok(())
    }
}

/// Whether a catalog entity is the one this request registered (by its annotation).
/// The catalog's refusal with the reason of each refused document, for the step's error.
fn catalog_refusal(e: &paved_core::Error) -> String {
    match e {
        paved_core::Error::ImportRejected(reports) => reports
            .iter()
            .flat_map(|r| r.errors.iter().map(|v| v.message.clone()))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

fn created_by(view: &EntityView, request_id: &str) -> bool {
    serde_json::from_slice::<Value>(&view.json)
        .ok()
        .is_some_and(|e| {
            e.pointer("/metadata/annotations")
                .and_then(|a| a.get(REQUEST_ANNOTATION))
                .and_then(Value::as_str)
                == Some(request_id)
        })
}

fn remove_dir(dir: &Path) -> Result<(), DriverError> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a process is gone (or only a zombie waiting to be reaped).
    fn gone(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                stat.rsplit_once(") ")
                    .is_some_and(|(_, rest)| rest.starts_with('Z'))
            })
            .unwrap_or(true)
    }

    #[tokio::test]
    async fn a_git_past_its_timeout_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().expect("dir");
        let pidfile = dir.path().join("pid");
        // A real git, running a child that would outlive it by a minute.
        let alias = format!(
            "alias.hang=!echo $$ > {} && exec sleep 60",
            pidfile.display()
        );
        let started = std::time::Instant::now();
        let err = run_git(
            Path::new("git"),
            dir.path(),
            &["-c", &alias, "hang"],
            Duration::from_millis(500),
        )
        .await
        .expect_err("timed out");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(
                &err,
                DriverError::Retryable {
                    code: "Retryable.Filesystem",
                    message
                } if message.contains("did not finish within")
            ),
            "{err:?}"
        );
        let pid = std::fs::read_to_string(&pidfile).expect("the child ran");
        let pid = pid.trim();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !gone(pid) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(gone(pid), "git's child {pid} was killed too");

        // A quick one is unaffected.
        let version = git(
            Path::new("git"),
            dir.path(),
            &["--version"],
            Duration::from_secs(30),
        )
        .await
        .expect("git runs");
        assert!(version.starts_with("git version"), "{version}");
    }
}
