//! The README's "AWS on your machine" section, run as a newcomer runs it: its first block in
//! one shell (a fresh moto of its own, the exports, `paved aws bootstrap`, then
//! `paved up --backend aws`, each its own process), its second block in another shell once
//! `/healthz` answers (tokens from `paved token`, the Group, a queue request, the wait for
//! READY). Nothing is skipped: moto comes from `scripts/moto.sh`, as in the README. The only
//! rewrites are the binary (`cargo run … -p paved --` is the `paved` this test built), the
//! paths and the ports. Also: a stack that lost its state machine (bootstrapped before moto's
//! execution was turned on) is repaired by running `paved aws bootstrap` again.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{Moto, REPO, free_port, stop_moto};

const PAVED: &str = env!("CARGO_BIN_EXE_paved");

/// The ```sh blocks of the README's "## AWS on your machine" section, in order.
fn aws_blocks() -> Vec<String> {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("\n## AWS on your machine")
        .expect("an AWS on your machine section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut blocks = Vec::new();
    let mut block: Option<String> = None;
    for line in section.lines() {
        match (block.as_mut(), line.trim_start()) {
            (None, "```sh") => block = Some(String::new()),
            (Some(_), "```") => blocks.extend(block.take()),
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    assert_eq!(
        blocks.len(),
        2,
        "the section has a server block and a client block"
    );
    blocks
}

/// `cargo run … -p paved --` is the binary this test built.
fn with_built_paved(script: &str) -> String {
    let mut script = script.to_owned();
    for invocation in [
        "cargo run -q --profile local -p paved --",
        "cargo run --profile local -q -p paved --",
        "cargo run --profile local -p paved --",
    ] {
        script = script.replace(invocation, "\"$PAVED\"");
    }
    assert!(
        !script.contains("cargo run"),
        "every paved invocation is rewritten: {script}"
    );
    script
}

/// A shell as a newcomer has it: no AWS or paved settings of the test command's.
fn newcomer_bash(script: &str, dir: &Path) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(dir)
        .env("PAVED", PAVED);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        // PAVED_MOTO_VENV only says where the pinned moto is installed.
        if (k.starts_with("AWS_") || k.starts_with("PAVED_")) && k != "PAVED_MOTO_VENV" {
            cmd.env_remove(k.as_ref());
        }
    }
    cmd
}

/// The README's first block, running in its own process group: bash, moto and `paved up`
/// are all ended when this is dropped.
struct Server {
    child: Child,
    moto_dir: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn log_tail(&self) -> String {
        let log = self.log.lock().expect("log");
        log[log.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
        stop_moto(&self.moto_dir);
    }
}

fn get_json(url: &str, token: &str) -> (u16, Value) {
    let (url, token) = (url.to_owned(), token.to_owned());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let Ok(r) = reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .timeout(Duration::from_secs(10))
                .send()
                .await
            else {
                return (0, Value::Null);
            };
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        })
    })
    .join()
    .expect("join")
}

fn paved_token(dir: &Path, user: &str, group: &str) -> String {
    let out = newcomer_bash(
        &format!("\"$PAVED\" token --user {user} --group {group}"),
        dir,
    )
    .output()
    .expect("paved token");
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

#[test]
fn the_readme_aws_section_runs_as_written_and_a_queue_reaches_ready() {
    let started = Instant::now();
    let blocks = aws_blocks();
    let dir = tempfile::tempdir().expect("tempdir");
    let moto_dir = dir.path().join("moto");
    let moto_port = free_port();

    // Terminal one: moto, the exports, the bootstrap and `paved up`, as written.
    let server_script = with_built_paved(&blocks[0])
        .replace("scripts/moto.sh", &format!("{REPO}/scripts/moto.sh"))
        .replace("/tmp/moto 5000", &format!("/tmp/moto {moto_port}"))
        .replace("127.0.0.1:5000", &format!("127.0.0.1:{moto_port}"))
        .replace("/tmp/moto", &moto_dir.display().to_string());
    assert!(
        !server_script.contains("5000") && !server_script.contains("/tmp/moto"),
        "the moto directory and port are rewritten: {server_script}"
    );
    assert!(
        server_script.contains("aws bootstrap") && server_script.contains("up --backend aws"),
        "the block bootstraps and runs paved on the AWS backend: {server_script}"
    );
    let mut child = newcomer_bash(&server_script, dir.path())
        // The README's `paved up` listens on 8080; here a free port, read from its log.
        .env("PAVED_BIND", "127.0.0.1:0")
        .env("PAVED_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("bash");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (up_tx, up_rx) = mpsc::channel();
    {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(entry) = serde_json::from_str::<Value>(&line)
                    && entry["fields"]["message"] == "paved is up"
                    && let Some(addr) = entry["fields"]["addr"].as_str()
                {
                    let _ = up_tx.send(addr.to_owned());
                }
                log.lock().expect("log").push(line);
            }
        });
    }
    let mut server = Server {
        child,
        moto_dir,
        log,
    };
    // The first run installs moto from PyPI into its cached virtualenv.
    let deadline = Instant::now() + Duration::from_secs(300);
    let addr = loop {
        if let Ok(addr) = up_rx.recv_timeout(Duration::from_millis(200)) {
            break addr;
        }
        if let Some(status) = server.child.try_wait().expect("wait") {
            std::thread::sleep(Duration::from_millis(200));
            panic!(
                "the README's first block exited ({status}) before paved was up:\n{}",
                server.log_tail()
            );
        }
        assert!(
            Instant::now() < deadline,
            "paved was not up within 300 s:\n{}",
            server.log_tail()
        );
    };
    let url = format!("http://{addr}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while get_json(&format!("{url}/healthz"), "").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "/healthz did not answer:\n{}",
            server.log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let up_after = started.elapsed();

    // Terminal two: tokens, the Group, the queue request and the wait for READY, as written.
    let client_script = with_built_paved(&blocks[1]).replace("localhost:8080", &addr);
    assert!(
        client_script.contains("sqs-queue") && client_script.contains("READY"),
        "the block requests a queue and waits for READY: {client_script}"
    );
    let client_script = format!(
        "curl() {{ command curl --fail-with-body --max-time 30 \"$@\"; }}\n{client_script}"
    );
    let transcript = dir.path().join("client.out");
    let mut client = newcomer_bash(&client_script, dir.path())
        .stdout(std::fs::File::create(&transcript).expect("transcript"))
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .expect("bash");
    // The README waits for READY in a loop; bound the whole run here instead.
    let deadline = Instant::now() + Duration::from_secs(120);
    let alice = paved_token(dir.path(), "alice", "team-a");
    let requests = format!("{url}/v1/requests?owner=team-a&limit=20");
    let status = loop {
        if let Some(status) = client.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", client.id())])
                .status();
            let _ = client.wait();
            panic!(
                "the README's second block did not finish within 120 s; the requests: {:#}\n\
                 its output: {}\npaved's log:\n{}",
                get_json(&requests, &alice).1,
                std::fs::read_to_string(&transcript).unwrap_or_default(),
                server.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        status.success(),
        "the README's second block failed ({status}); its output: {}\npaved's log:\n{}",
        std::fs::read_to_string(&transcript).unwrap_or_default(),
        server.log_tail()
    );

    // What the README's loop waited for, seen through the API: a READY queue on this moto.
    let (code, listed) = get_json(&requests, &alice);
    assert_eq!(code, 200, "{listed:#}");
    let items = listed["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "one request: {listed:#}");
    let request = &items[0];
    assert_eq!(request["template"], "sqs-queue", "{request:#}");
    assert_eq!(request["status"], "READY", "{request:#}");
    let queue_url = request["outputs"]["queueUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("the queue's URL is an output: {request:#}"));
    assert!(
        queue_url.starts_with(&format!("http://127.0.0.1:{moto_port}/")),
        "the queue is on this test's moto: {queue_url}"
    );
    let (code, _) = get_json(&format!("http://127.0.0.1:{moto_port}/moto-api/"), "");
    assert_eq!(code, 200, "moto is still up");
    eprintln!(
        "paved up on moto after {:.1} s; the queue READY after {:.1} s",
        up_after.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        server.child.try_wait().expect("wait").is_none(),
        "paved up is still running:\n{}",
        server.log_tail()
    );
    drop(server);
}

/// The stack as the bootstrap before this fix left it: created, then moto's execution turned
/// on, which swaps Step Functions backends and so loses the state machine. Running
/// `paved aws bootstrap` again brings it back, and once more changes nothing.
#[tokio::test]
async fn bootstrapping_again_repairs_a_stack_whose_state_machine_moto_lost() {
    let moto = Moto::start();
    let config = paved_aws::config::for_emulator(&moto.endpoint).await;
    let spec = paved_aws::stack::StackSpec::shipped().expect("the template");
    paved_aws::bootstrap::bootstrap(&config, &spec, "paved")
        .await
        .expect("bootstrap with execution off");
    let r = reqwest::Client::new()
        .post(format!("{}/moto-api/config", moto.endpoint))
        .json(&serde_json::json!({"stepfunctions": {"execute_state_machine": true}}))
        .send()
        .await
        .expect("moto config");
    assert!(r.status().is_success());
    let name = "paved-provisioning-state-machine";
    let find = || paved_aws::bootstrap::find_state_machine(&config, name);
    assert_eq!(
        find().await.expect("list"),
        None,
        "moto 5.2.5 loses state machines made before execution is turned on"
    );

    let bootstrap = || {
        let out = Command::new(PAVED)
            .args(["aws", "bootstrap", "--endpoint", &moto.endpoint])
            .output()
            .expect("paved aws bootstrap");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let first = bootstrap();
    let arn = find().await.expect("list").expect("re-created");
    assert!(
        first.contains(&format!("PAVED_STATE_MACHINE_ARN={arn}")),
        "{first}"
    );
    let second = bootstrap();
    assert_eq!(second, first, "a second run prints the same stack");
    assert_eq!(find().await.expect("list"), Some(arn), "and keeps it");
}
