//! `@backstage/catalog-client`, the published npm package, unchanged, against `paved up`.
//! The README's test command installs it (`npm ci` in tests/backstage-client).

mod common;

use std::path::Path;
use std::process::Command;

use common::{Paved, generated_catalog};

#[tokio::test]
async fn backstage_catalog_client_works_against_paved() {
    let client_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/backstage-client");
    assert!(
        client_dir
            .join("node_modules/@backstage/catalog-client")
            .is_dir(),
        "@backstage/catalog-client is not installed: run scripts/test.sh, or `npm ci` in {}",
        client_dir.display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let paved = Paved::start(dir.path());
    let token = paved.admin();

    // Load the catalog through the CLI, as a user would.
    let file = dir.path().join("catalog-info.yaml");
    std::fs::write(&file, generated_catalog(60, 3)).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_paved"))
        .args(["catalog", "import", "--url", &paved.url, "--token", &token])
        .arg(&file)
        .output()
        .expect("paved catalog import");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("63 created"));

    let out = Command::new("node")
        .args(["--test", "--test-reporter=spec", "client.test.mjs"])
        .current_dir(&client_dir)
        .env("PAVED_URL", &paved.url)
        .env("PAVED_TOKEN", &token)
        .output()
        .expect("node runs");
    let report = String::from_utf8_lossy(&out.stdout);
    println!("{report}");
    assert!(
        out.status.success(),
        "the Backstage client tests failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("fail 0"), "{report}");
}
