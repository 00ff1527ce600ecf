//! What `sam build` compiles the functions with. cargo-lambda adds `panic = "abort"` to a
//! release profile that sets no `panic`, unless the workspace turns its defaults off; the
//! bootstraps' ≤ 8 MB relies on it (docs/decisions.md, "Lambda bootstraps"), and `paved`
//! relies on `cargo build --release` keeping panics unwinding. A change to either fails here
//! rather than silently in a size table.

const MANIFEST: &str = include_str!("../Cargo.toml");

/// The lines of one `[section]` of the manifest, up to the next section.
fn section(name: &str) -> Option<Vec<&'static str>> {
    let header = format!("[{name}]");
    let mut lines = MANIFEST.lines().skip_while(|l| l.trim() != header);
    lines.next()?;
    Some(
        lines
            .take_while(|l| !l.trim_start().starts_with('['))
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .collect(),
    )
}

#[test]
fn the_release_profile_leaves_the_panic_strategy_to_each_build() {
    let release = section("profile.release").expect("a release profile");
    assert!(
        release.iter().all(|l| !l.trim_start().starts_with("panic")),
        "[profile.release] sets panic: cargo-lambda would keep it for every function, and \
         `paved` would get it too: {release:?}"
    );
}

#[test]
fn cargo_lambda_keeps_its_release_defaults() {
    let off: Vec<&str> = MANIFEST
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && l.contains("disable_optimizations"))
        .collect();
    assert!(
        off.is_empty(),
        "the manifest turns off cargo-lambda's release defaults (panic=abort): {off:?}"
    );
}
