//! jsonwebtoken's cryptography for the one algorithm paved signs and accepts, HS256, on the
//! RustCrypto `hmac` and `sha2` crates. The crate's bundled providers link every algorithm it
//! knows (RSA, ECDSA on two curves, Ed25519), which paved never accepts: ~0.4 MB of every
//! Lambda bootstrap (docs/decisions.md → "Lambda bootstraps").

use hmac::{Hmac, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use sha2::Sha256;

/// An HMAC-SHA256 key, ready to sign or verify.
struct Hs256(Hmac<Sha256>);

impl Hs256 {
    /// Only HS256, and only with an HMAC secret: anything else is refused as the bundled
    /// providers refuse it.
    fn new(algorithm: &Algorithm, family: AlgorithmFamily, secret: Result<&[u8]>) -> Result<Self> {
        if *algorithm != Algorithm::HS256 {
            return Err(ErrorKind::InvalidAlgorithm.into());
        }
        if family != AlgorithmFamily::Hmac {
            return Err(ErrorKind::InvalidKeyFormat.into());
        }
        Hmac::new_from_slice(secret?)
            .map(Self)
            .map_err(|_| ErrorKind::InvalidKeyFormat.into())
    }

    fn mac(&self, message: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(message);
        mac
    }
}

impl Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(self.mac(message).finalize().into_bytes().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hs256 {
    /// In constant time (`verify_slice`).
    fn verify(&self, message: &[u8], tag: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        self.mac(message)
            .verify_slice(tag)
            .map_err(signature::Error::from_source)
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory: |algorithm, key| {
        Ok(Box::new(Hs256::new(
            algorithm,
            key.family(),
            Ok(key.as_bytes()),
        )?))
    },
    verifier_factory: |algorithm, key| {
        Ok(Box::new(Hs256::new(
            algorithm,
            key.family(),
            key.try_get_as_bytes(),
        )?))
    },
    // JWKs are never read: paved's tokens carry a shared secret's signature.
    key_utils: KeyUtils::new_unimplemented(),
};

/// Makes HS256 jsonwebtoken's provider for this process, before the first token is signed or
/// verified. Later calls find it installed.
pub(crate) fn install() {
    // The only provider this process ever installs is this one.
    let _ = PROVIDER.install_default();
}
