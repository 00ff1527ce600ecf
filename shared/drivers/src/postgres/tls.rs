//! `sslmode` and `sslrootcert` in `PAVED_POSTGRES_URL`, with libpq's meanings, on rustls (the
//! workspace's ring provider):
//!
//! - `disable`: no TLS;
//! - `prefer` (the default): TLS when the server offers it, the certificate unchecked;
//! - `require`: TLS or no connection, the certificate unchecked (checked against
//!   `sslrootcert` when one is given, as libpq does);
//! - `verify-ca`: TLS, the certificate chains to `sslrootcert`;
//! - `verify-full`: that, and the certificate names the host connected to.
//!
//! `sslrootcert` is a PEM file of CA certificates, or `system` for the machine's trust store;
//! `verify-ca` and `verify-full` need it. tokio-postgres itself knows only `disable`, `prefer`
//! and `require` and refuses `sslrootcert`, so both are taken out of the string before it is
//! parsed.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::Config;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Not at all (`prefer`, `require`): encrypted, but not protected from an impostor.
    None,
    /// It chains to a trusted CA (`verify-ca`).
    Ca,
    /// It chains to a trusted CA and names the host (`verify-full`).
    Full,
}

/// Where the trusted CAs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    File(PathBuf),
    System,
}

/// The TLS part of a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    pub verify: Verify,
    pub roots: Option<Roots>,
}

/// Parses a `postgresql://` URL or a key=value string, with `sslmode` (all five of libpq's
/// that paved supports) and `sslrootcert`.
pub(super) fn parse(url: &str) -> Result<(Config, TlsSettings), String> {
    let (rest, sslmode, sslrootcert) = extract(url)?;
    let mut config: Config = rest
        .parse()
        .map_err(|e| format!("PAVED_POSTGRES_URL is not a PostgreSQL connection string: {e}"))?;
    let roots = sslrootcert.map(|r| {
        if r == "system" {
            Roots::System
        } else {
            Roots::File(PathBuf::from(r))
        }
    });
    let (mode, verify) = match sslmode.as_deref().unwrap_or("prefer") {
        "disable" => (SslMode::Disable, Verify::None),
        "prefer" => (SslMode::Prefer, Verify::None),
        // libpq: with a root certificate given, require checks the chain like verify-ca.
        "require" if roots.is_some() => (SslMode::Require, Verify::Ca),
        "require" => (SslMode::Require, Verify::None),
        "verify-ca" => (SslMode::Require, Verify::Ca),
        "verify-full" => (SslMode::Require, Verify::Full),
        other => {
            return Err(format!(
                "PAVED_POSTGRES_URL: sslmode={other} is not supported; use disable, prefer, require, verify-ca or verify-full"
            ));
        }
    };
    if verify != Verify::None && roots.is_none() {
        return Err(format!(
            "PAVED_POSTGRES_URL: sslmode={} needs sslrootcert: a PEM file of the CA that signed the server's certificate, or `system` for this machine's trust store",
            sslmode.unwrap_or_default()
        ));
    }
    config.ssl_mode(mode);
    Ok((
        config,
        TlsSettings {
            mode,
            verify,
            roots,
        },
    ))
}

/// The connector for these settings: reads the CA file (or the system's store) now, so a
/// missing or unreadable one is refused when the driver is built, not at the first request.
pub(super) fn connector(settings: &TlsSettings) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS for PostgreSQL: {e}"))?;
    let verifier: Arc<dyn ServerCertVerifier> = match settings.verify {
        Verify::None => Arc::new(Unchecked(provider.signature_verification_algorithms)),
        Verify::Ca | Verify::Full => {
            let roots = Arc::new(root_store(settings.roots.as_ref())?);
            if settings.verify == Verify::Full {
                WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
                    .build()
                    .map_err(|e| format!("TLS for PostgreSQL: {e}"))?
            } else {
                Arc::new(ChainOnly {
                    roots,
                    algorithms: provider.signature_verification_algorithms,
                })
            }
        }
    };
    let config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn root_store(roots: Option<&Roots>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match roots {
        Some(Roots::File(path)) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!(
                    "sslrootcert {}: no CA certificate in it",
                    path.display()
                ));
            }
        }
        Some(Roots::System) | None => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(format!(
                    "sslrootcert=system: this machine's trust store has no certificates ({:?})",
                    found.errors
                ));
            }
        }
    }
    Ok(store)
}

/// `prefer` and `require`: the handshake's signatures are checked (the session is
/// encrypted to whoever holds the certificate's key), the certificate itself is not.
#[derive(Debug)]
struct Unchecked(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `verify-ca`: the chain to a trusted CA is checked, the host name is not.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Whether a connection failed on TLS itself (a certificate refused, a server without
/// TLS when it is required): a setting to fix, not worth retrying.
pub(super) fn is_tls_refusal(e: &tokio_postgres::Error) -> bool {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.downcast_ref::<rustls::Error>().is_some()
            || c.to_string().contains("server does not support TLS")
        {
            return true;
        }
        // io::Error's `source` skips the error it wraps: look inside it.
        if let Some(inner) = c
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            && inner.downcast_ref::<rustls::Error>().is_some()
        {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Takes `sslmode` and `sslrootcert` out of a connection string: `(the rest, sslmode,
/// sslrootcert)`.
fn extract(url: &str) -> Result<(String, Option<String>, Option<String>), String> {
    let (mut sslmode, mut sslrootcert) = (None, None);
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((url.to_owned(), None, None));
        };
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match percent_decode(key)?.as_str() {
                "sslmode" => sslmode = Some(percent_decode(value)?),
                "sslrootcert" => sslrootcert = Some(percent_decode(value)?),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        return Ok((rest, sslmode, sslrootcert));
    }
    let mut kept = Vec::new();
    for (key, value) in conninfo_pairs(url)? {
        match key.as_str() {
            "sslmode" => sslmode = Some(value),
            "sslrootcert" => sslrootcert = Some(value),
            _ => kept.push(format!(
                "{key}='{}'",
                value.replace('\\', "\\\\").replace('\'', "\\'")
            )),
        }
    }
    Ok((kept.join(" "), sslmode, sslrootcert))
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("PAVED_POSTGRES_URL: a bad percent-escape in {text:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("PAVED_POSTGRES_URL: {text:?} is not UTF-8"))
}

/// libpq's `key = value` pairs: values bare or single-quoted, `\` escaping.
fn conninfo_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let bad =
        |why: &str| format!("PAVED_POSTGRES_URL is not a PostgreSQL connection string: {why}");
    let mut chars = text.chars().peekable();
    let mut pairs = Vec::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(bad(&format!("`{key}` has no value")));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.push(chars.next().ok_or_else(|| bad("a trailing \\"))?),
                    Some(c) => value.push(c),
                    None => return Err(bad("an unterminated quoted value")),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                chars.next();
                if c == '\\' {
                    value.push(chars.next().ok_or_else(|| bad("a trailing \\"))?);
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_come_out_of_urls_and_key_value_strings() {
        let (config, tls) = parse(
            "postgresql://admin:pw@db.example:6543/postgres?sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.pem&application_name=paved",
        )
        .expect("parse");
        assert_eq!(tls.mode, SslMode::Require);
        assert_eq!(tls.verify, Verify::Full);
        assert_eq!(tls.roots, Some(Roots::File("/etc/ca x.pem".into())));
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
        assert_eq!(config.get_application_name(), Some("paved"));
        assert_eq!(config.get_ports(), [6543]);

        let (config, tls) = parse(
            "host=db.example port=6543 user=admin password=pw sslmode = verify-ca sslrootcert='/etc/my ca.pem' dbname=postgres",
        )
        .expect("parse");
        assert_eq!(tls.verify, Verify::Ca);
        assert_eq!(tls.roots, Some(Roots::File("/etc/my ca.pem".into())));
        assert_eq!(config.get_dbname(), Some("postgres"));

        let (config, tls) = parse("host=h user=u password='a\\'b c'").expect("parse");
        assert_eq!(config.get_password(), Some(&b"a'b c"[..]));
        assert_eq!((tls.mode, tls.verify), (SslMode::Prefer, Verify::None));

        let (_, tls) = parse("postgresql://u@h/db?sslmode=require").expect("parse");
        assert_eq!((tls.mode, tls.verify), (SslMode::Require, Verify::None));
        let (_, tls) =
            parse("postgresql://u@h/db?sslmode=require&sslrootcert=system").expect("parse");
        assert_eq!((tls.verify, tls.roots), (Verify::Ca, Some(Roots::System)));
        let (config, tls) = parse("postgresql://u@h/db?sslmode=disable").expect("parse");
        assert_eq!(
            (tls.mode, config.get_ssl_mode()),
            (SslMode::Disable, SslMode::Disable)
        );

        let err = parse("postgresql://u@h/db?sslmode=verify-full").expect_err("no CA");
        assert!(err.contains("needs sslrootcert"), "{err}");
        let err = parse("postgresql://u@h/db?sslmode=allow").expect_err("allow");
        assert!(err.contains("not supported"), "{err}");
        let err = parse("host=h port='5432").expect_err("unterminated");
        assert!(err.contains("unterminated"), "{err}");
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_refused_when_the_connector_is_built() {
        let dir = tempfile::tempdir().expect("dir");
        let settings = |path: PathBuf| TlsSettings {
            mode: SslMode::Require,
            verify: Verify::Full,
            roots: Some(Roots::File(path)),
        };
        let err = connector(&settings(dir.path().join("missing.pem")))
            .err()
            .expect("missing");
        assert!(err.contains("missing.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        let err = connector(&settings(empty)).err().expect("empty");
        assert!(err.contains("no CA certificate"), "{err}");
    }
}
