//! The README's "Try it" blocks, run as written against a fresh `paved up` started the way
//! the README's first command starts it (in a fresh directory, its own generated secret).
//! Any error answer fails: every `curl` runs with `--fail-with-body`. The only rewrites are
//! the binary (`cargo run … -p paved --` is the `paved` this test built) and the port.

mod common;

use std::process::Command;
use std::time::Duration;

use common::Paved;

/// The ```sh blocks of the README's "## Try it" section.
fn try_it_blocks() -> String {
    let readme = include_str!("../../../README.md");
    let start = readme.find("\n## Try it").expect("a Try it section");
    let section = &readme[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut blocks = String::new();
    let mut inside = false;
    for line in section.lines() {
        match (inside, line.trim_start()) {
            (false, "```sh") => inside = true,
            (true, "```") => inside = false,
            (true, _) => {
                blocks.push_str(line);
                blocks.push('\n');
            }
            _ => {}
        }
    }
    assert!(blocks.contains("curl"), "the Try it section has commands");
    blocks
}

#[test]
fn the_readme_try_it_runs_as_written_without_an_error_answer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paved = Paved::start_as_newcomer(dir.path());
    let addr = paved.url.trim_start_matches("http://").to_owned();
    let mut script = try_it_blocks();
    for invocation in [
        "cargo run -q --profile local -p paved --",
        "cargo run --profile local -q -p paved --",
        "cargo run --profile local -p paved --",
    ] {
        script = script.replace(invocation, "\"$PAVED\"");
    }
    assert!(
        !script.contains("cargo run"),
        "every paved invocation is rewritten"
    );
    let script = format!(
        "set -euo pipefail\ncurl() {{ command curl --fail-with-body --max-time 30 \"$@\"; }}\n{}",
        script.replace("localhost:8080", &addr)
    );
    let transcript = dir.path().join("try-it.out");
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .stdout(std::fs::File::create(&transcript).expect("transcript"))
        .env("PAVED", env!("CARGO_BIN_EXE_paved"))
        .env_remove("PAVED_JWT_SECRET")
        .env_remove("PAVED_DATA_DIR")
        .spawn()
        .expect("bash");
    // The README waits for READY in a loop; bound the whole run here instead.
    let deadline = std::time::Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let output = std::fs::read_to_string(&transcript).unwrap_or_default();
            panic!("the README's Try it did not finish within 180 s; its output: {output}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&transcript).unwrap_or_default();
    let tail: String = output
        .chars()
        .rev()
        .take(2000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert!(
        status.success(),
        "the README's Try it failed: {status}; its last output: {tail}"
    );
    assert!(
        dir.path().join("orders/catalog-info.yaml").exists(),
        "the new service's repository was cloned"
    );
    drop(paved);
}
