//! The `service` driver: a new service repository from a skeleton (Rust axum or Python
//! FastAPI, each with `catalog-info.yaml`, a CI workflow and a README), pushed to a new bare
//! git repository under the configured git root and registered in the catalog.
//!
//! Steps: `render` (the skeleton into `<git root>/.staging/<name>`), `repository`
//! (`<git root>/<name>.git`, main branch pushed once), `register` (the catalog-info.yaml
//! entity, annotated with the request id). git runs as a program with arguments, never
//! through a shell.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use async_trait::async_trait;
use minijinja::Environment;
use paved_core::catalog::{
    CatalogRepository, EntityRef, EntityView, PlatformWriter, RefDefaults, parse_documents,
};
use paved_core::provisioning::{Driver, DriverError, PlannedStep, Planner, ResourceSpec};
use serde_json::{Value, json};

pub const RESOURCE_TYPE: &str = "service";
const STEPS: [&str; 3] = ["render", "repository", "register"];
const REQUEST_ANNOTATION: &str = "paved.dev/request-id";

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

pub struct ServiceDriver {
    planner: ServicePlanner,
    catalog: Arc<CatalogRepository>,
}

fn permanent(code: &'static str, message: impl Into<String>) -> DriverError {
    DriverError::NonRetryable {
        code,
        message: message.into(),
    }
}

fn io(e: std::io::Error) -> DriverError {
    DriverError::Retryable {
        code: "Retryable.Filesystem",
        message: e.to_string(),
    }
}

/// Runs git with arguments (no shell), failing with its stderr.
fn git(dir: &Path, args: &[&str]) -> Result<String, DriverError> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .map_err(|e| {
            permanent(
                "NonRetryable.GitMissing",
                format!("git could not be run: {e}"),
            )
        })?;
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
        }
    }

    fn staging(&self, spec: &ResourceSpec) -> PathBuf {
        self.planner.git_root.join(".staging").join(&spec.name)
    }

    fn repository(&self, spec: &ResourceSpec) -> PathBuf {
        self.planner.repository(spec)
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
                let bare = self.repository(spec);
                let staging = self.staging(spec);
                if !bare.exists() {
                    std::fs::create_dir_all(&bare).map_err(io)?;
                    git(
                        &bare,
                        &["init", "--quiet", "--bare", "--initial-branch=main"],
                    )?;
                }
                // Pushed already (a retried step): nothing to do.
                let pushed = git(
                    &bare,
                    &["rev-parse", "--verify", "--quiet", "refs/heads/main"],
                )
                .is_ok();
                if !pushed {
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
                    git(&staging, &["init", "--quiet", "--initial-branch=main"])?;
                    git(&staging, &["add", "--all"])?;
                    git(
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
                    )?;
                    let target = bare.to_string_lossy().into_owned();
                    git(&staging, &["push", "--quiet", &target, "main"])?;
                }
                let head = git(&bare, &["rev-parse", "refs/heads/main"])?;
                Ok(json!({"repository": bare.display().to_string(), "commit": head}))
            }
            "register" => {
                let text = std::fs::read_to_string(self.staging(spec).join("catalog-info.yaml"))
                    .map_err(io)?;
                let entity_ref = entity_ref(spec);
                let taken = self
                    .catalog
                    .read()
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
                self.catalog
                    .import_service_entities(documents, &PlatformWriter)
                    .await
                    .map_err(|e| permanent("NonRetryable.CatalogRefused", e.to_string()))?;
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
                    let index = self.catalog.read();
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
            "repository" => remove_dir(&self.repository(spec)),
            "render" => remove_dir(&self.staging(spec)),
            other => Err(permanent(
                "NonRetryable.UnknownStep",
                format!("no step '{other}' to undo"),
            )),
        }
    }

    async fn status(&self, spec: &ResourceSpec) -> Result<Option<Value>, DriverError> {
        let bare = self.repository(spec);
        let registered = self.catalog.read().get_by_ref(&entity_ref(spec)).is_some();
        Ok((bare.exists() && registered).then(|| json!({"repository": bare.display().to_string(), "entityRef": entity_ref(spec).to_string()})))
    }

    async fn delete(&self, spec: &ResourceSpec) -> Result<(), DriverError> {
        for step in STEPS.iter().rev() {
            self.undo(spec, step).await?;
        }
        Ok(())
    }
}

/// Whether a catalog entity is the one this request registered (by its annotation).
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
