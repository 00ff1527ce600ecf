//! Runs the real `paved` binary as a child process, for tests of what only a process shows:
//! start-up, signals, crashes, and clients outside Rust.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const SECRET: &str = "process-test-secret-process-test-secret";

pub(crate) struct Paved {
    pub child: Child,
    pub url: String,
    pub data: PathBuf,
}

impl Paved {
    /// Starts `paved up` on a free loopback port and waits until `/healthz` answers.
    pub(crate) fn start(data: &Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_paved"))
            .args(["up", "--bind", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("PAVED_JWT_SECRET", SECRET)
            .env("PAVED_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start paved");
        Self::wait_until_up(child, data)
    }

    /// Starts `paved up` as the README's first command does: in `dir`, with the default data
    /// directory (`./.paved`) and the secret paved generates there, on a free loopback port.
    pub(crate) fn start_as_newcomer(dir: &Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_paved"))
            .args(["up", "--bind", "127.0.0.1:0"])
            .current_dir(dir)
            .env_remove("PAVED_JWT_SECRET")
            .env_remove("PAVED_DATA_DIR")
            .env("PAVED_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start paved");
        Self::wait_until_up(child, &dir.join(".paved"))
    }

    fn wait_until_up(mut child: Child, data: &Path) -> Self {
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(120);
        let addr = loop {
            assert!(Instant::now() < deadline, "paved did not come up in time");
            let line = match lines.next() {
                Some(Ok(line)) => line,
                _ => panic!("paved exited before it was up: {:?}", child.wait()),
            };
            let Ok(log) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if log["fields"]["message"] == "paved is up" {
                break log["fields"]["addr"].as_str().expect("addr").to_owned();
            }
        };
        // Keep draining the logs so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let paved = Self {
            child,
            url: format!("http://{addr}"),
            data: data.to_owned(),
        };
        let health = http_status(&format!("{}/healthz", paved.url));
        assert_eq!(health, 200, "healthz answers once up");
        paved
    }

    pub(crate) fn token(&self, user: &str, groups: &[&str]) -> String {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_paved"));
        cmd.args(["token", "--user", user, "--data"])
            .arg(&self.data)
            .env("PAVED_JWT_SECRET", SECRET);
        for g in groups {
            cmd.args(["--group", g]);
        }
        let out = cmd.output().expect("paved token");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned()
    }

    pub(crate) fn admin(&self) -> String {
        self.token("root", &["platform-admins"])
    }

    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit and returns whether it exited cleanly.
    pub(crate) fn wait(mut self) -> bool {
        let status = self.child.wait().expect("wait");
        std::mem::forget(self);
        status.success()
    }

    /// How many Components and Groups the catalog holds (the golden paths are always there).
    pub(crate) async fn entity_count(&self, token: &str) -> u64 {
        let r = reqwest::Client::new()
            .get(format!(
                "{}/api/catalog/entities/by-query?limit=0&filter=kind=component&filter=kind=group",
                self.url
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("query");
        let body: serde_json::Value = r.json().await.expect("json");
        body["totalItems"].as_u64().expect("totalItems")
    }
}

impl Drop for Paved {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[allow(unused_imports)] // not every test binary that includes this module generates catalogs
pub(crate) use paved_tests::generated_catalog;

/// A GET from a synchronous context, returning the status code (0 when unreachable).
fn http_status(url: &str) -> u16 {
    let url = url.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            reqwest::get(url)
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        })
    })
    .join()
    .expect("join")
}

/// The repository's root, for its scripts.
pub(crate) const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A moto server of the test's own (`scripts/moto.sh`), stopped with its whole process group
/// when dropped.
pub(crate) struct Moto {
    pub dir: tempfile::TempDir,
    pub endpoint: String,
}

impl Moto {
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new(format!("{REPO}/scripts/moto.sh"))
            .arg("start")
            .arg(dir.path())
            .arg(free_port().to_string())
            .stderr(Stdio::inherit())
            .output()
            .expect("scripts/moto.sh");
        assert!(out.status.success(), "moto did not start");
        let endpoint = String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_owned();
        Self { dir, endpoint }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        stop_moto(self.dir.path());
    }
}

pub(crate) fn stop_moto(dir: &Path) {
    let _ = Command::new(format!("{REPO}/scripts/moto.sh"))
        .arg("stop")
        .arg(dir)
        .status();
}
