//! The guardrails a requests function runs: the default bundle, a platform team's own `.rego`
//! files beside it (or instead of it), and their `config.json` as the data. `paved up` takes
//! the folder from `--policies`; a Lambda function from `PAVED_POLICY_DIR`, which the template
//! points at a policy bundle layer (`/opt/paved-policies`), so custom guardrails work on both.

use std::path::{Path, PathBuf};

use paved_core::Error;
use paved_core::policy::{DEFAULT_CONFIG, DEFAULT_POLICIES, PolicyEngine};

/// Compiles the guardrails from `source` (a folder, and whether it replaces the default
/// policies) or the default bundle alone. The bundle's own tests must pass with the default
/// data; with a team's data a failing default test is only a warning.
pub fn load(source: Option<(&Path, bool)>) -> Result<PolicyEngine, Error> {
    let unreadable = |what: &Path, e: std::io::Error| {
        Error::Internal(format!("reading the guardrails at {}: {e}", what.display()))
    };
    let mut sources: Vec<(String, String)> = Vec::new();
    let mut data = DEFAULT_CONFIG.to_owned();
    if source.is_none_or(|(_, replace)| !replace) {
        sources.extend(
            DEFAULT_POLICIES
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned())),
        );
    }
    if let Some((dir, _)) = source {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| unreadable(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "rego"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| unreadable(&f, e))?;
            sources.push((f.display().to_string(), text));
        }
        let config = dir.join("config.json");
        if config.exists() {
            data = std::fs::read_to_string(&config).map_err(|e| unreadable(&config, e))?;
        }
    }
    let custom_data = data != DEFAULT_CONFIG;
    let engine = PolicyEngine::new(sources, &data)?;
    let failed: Vec<String> = engine
        .run_tests()
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(n, _)| n)
        .collect();
    if !failed.is_empty() {
        // The default bundle's tests pin the default data's values; with a team's own data
        // they may rightly fail, so that is a warning. With the default data it is a bug.
        if !custom_data {
            return Err(Error::Internal(format!(
                "the guardrails' own tests fail: {}",
                failed.join(", ")
            )));
        }
        tracing::warn!(tests = ?failed, "guardrail tests fail against this policy data");
    }
    Ok(engine)
}

/// `PAVED_POLICY_DIR` and `PAVED_POLICY_REPLACE_DEFAULT` (`true` to drop the default
/// policies), as a Lambda function reads them.
pub fn source_from_env() -> Option<(PathBuf, bool)> {
    let dir = std::env::var_os("PAVED_POLICY_DIR").filter(|d| !d.is_empty())?;
    let replace = std::env::var("PAVED_POLICY_REPLACE_DEFAULT").is_ok_and(|v| v == "true");
    Some((PathBuf::from(dir), replace))
}

/// Compiles the guardrails `PAVED_POLICY_DIR` names (the default bundle without it) on a
/// blocking thread: a cold start overlaps it with opening the backend and reading the
/// catalog, which wait on the network.
pub fn compile_from_env() -> tokio::task::JoinHandle<Result<PolicyEngine, Error>> {
    tokio::task::spawn_blocking(|| {
        let source = source_from_env();
        load(
            source
                .as_ref()
                .map(|(dir, replace)| (dir.as_path(), *replace)),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_teams_policy_folder_adds_rules_and_data() {
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join("extra.rego"),
            "package paved.guardrails\nimport rego.v1\ndeny contains {\"rule\": \"team.no-friday\", \"message\": \"not on fridays\"} if input.request.name == \"friday\"\n",
        )
        .expect("write");
        let engine = load(Some((dir.path(), false))).expect("compiles");
        let verdict = engine
            .evaluate_request(&serde_json::json!({
                "request": {"template": "t", "name": "friday", "owner": "group:default/a",
                            "environment": "development", "parameters": {}, "requester": "user:default/a"},
                "template": {"name": "t", "environments": []},
                "usage": {"team_active_resources": 0},
            }))
            .expect("evaluates");
        assert!(
            verdict
                .violations
                .iter()
                .any(|v| v.rule == "team.no-friday"),
            "{:?}",
            verdict.violations
        );
        assert_eq!(
            load(Some((&dir.path().join("missing"), false)))
                .err()
                .map(|e| e.code()),
            Some("internal")
        );
    }
}
