//! The HS256 secret local tokens are signed with: `PAVED_JWT_SECRET`, or a random one
//! generated into the data directory on first use (readable by its owner only).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use rand::RngCore;

pub const SECRET_FILE: &str = "jwt-secret";

/// Returns the secret, creating the file when neither the variable nor the file exists.
pub fn load_or_create(data_dir: &Path, from_env: Option<String>) -> Result<Vec<u8>> {
    if let Some(secret) = from_env.filter(|s| !s.is_empty()) {
        anyhow::ensure!(
            secret.len() >= 32,
            "PAVED_JWT_SECRET must be at least 32 characters"
        );
        return Ok(secret.into_bytes());
    }
    let path = data_dir.join(SECRET_FILE);
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() >= 32 => return Ok(bytes),
        Ok(_) => anyhow::bail!(
            "{} is shorter than 32 bytes; delete it to generate a new one",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    paved_sqlite::create_private_dir(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    let secret = hex::encode(raw).into_bytes();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(&secret)?;
            file.sync_all()?;
            Ok(secret)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(std::fs::read(&path)?),
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused_and_env_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = load_or_create(dir.path(), None).expect("create");
        assert_eq!(first, load_or_create(dir.path(), None).expect("reuse"));
        let env = "x".repeat(40);
        assert_eq!(
            load_or_create(dir.path(), Some(env.clone())).expect("env"),
            env.into_bytes()
        );
        assert!(load_or_create(dir.path(), Some("short".into())).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
