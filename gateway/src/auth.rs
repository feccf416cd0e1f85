//! Step one of the answer path: who is calling. A department is its mTLS
//! client certificate (subject CN, mapped by the catalogue) or, in token
//! mode, a signed token `v1.<department>.<expiry>.<hmac>`. Nothing
//! anonymous gets further.

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::catalogue::Catalogue;
use crate::denial::{Denial, reason};

/// How departments prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Client certificates only (production).
    Mtls,
    /// Signed tokens only (demo, tests).
    Token,
    /// A certificate when one is presented, else a token.
    Both,
}

impl std::str::FromStr for AuthMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mtls" => Ok(Self::Mtls),
            "token" => Ok(Self::Token),
            "both" => Ok(Self::Both),
            other => Err(format!("'{other}' is not one of mtls, token, both")),
        }
    }
}

const TOKEN_VERSION: &str = "v1";

fn signature(key: &[u8], payload: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A token for `department` valid until `expires_unix` (seconds).
pub fn mint_token(key: &[u8], department: &str, expires_unix: i64) -> String {
    let payload = format!("{TOKEN_VERSION}.{department}.{expires_unix}");
    let sig = signature(key, &payload);
    format!("{payload}.{sig}")
}

/// The department a valid, unexpired token names.
pub fn verify_token(key: &[u8], token: &str, now_unix: i64) -> Result<String, &'static str> {
    let mut parts = token.split('.');
    let (Some(version), Some(department), Some(expiry), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("token is not v1.<department>.<expiry>.<signature>");
    };
    if version != TOKEN_VERSION {
        return Err("unknown token version");
    }
    let expected = signature(key, &format!("{version}.{department}.{expiry}"));
    // Compare in constant time over the hex strings.
    let same = expected.len() == sig.len() && expected.bytes().zip(sig.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if !same {
        return Err("token signature does not verify");
    }
    let expiry: i64 = expiry.parse().map_err(|_| "token expiry is not a number")?;
    if expiry < now_unix {
        return Err("token expired");
    }
    Ok(department.to_string())
}

pub struct Authenticator {
    mode: AuthMode,
    token_key: Vec<u8>,
    catalogue: Arc<Catalogue>,
}

impl Authenticator {
    pub fn new(mode: AuthMode, token_key: Vec<u8>, catalogue: Arc<Catalogue>) -> Self {
        Self {
            mode,
            token_key,
            catalogue,
        }
    }

    /// The calling department's id.
    pub fn authenticate(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        peer_certs: Option<&[tonic::transport::CertificateDer<'static>]>,
    ) -> Result<String, Denial> {
        let denied = |why: &str| Denial::new(reason::UNAUTHENTICATED, why);
        if self.mode != AuthMode::Token
            && let Some(leaf) = peer_certs.and_then(|c| c.first())
        {
            let cn = crate::cert::subject_common_name(leaf).ok_or_else(|| denied("client certificate has no subject CN"))?;
            return self
                .catalogue
                .department_by_certificate(&cn)
                .map(|d| d.id.clone())
                .ok_or_else(|| denied("client certificate names no catalogued department"));
        }
        if self.mode == AuthMode::Mtls {
            return Err(denied("a department client certificate is required"));
        }
        let header = metadata
            .get("authorization")
            .ok_or_else(|| denied("no client certificate and no authorization token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| denied("authorization is not 'Bearer <token>'"))?;
        let department = verify_token(&self.token_key, token, chrono::Utc::now().timestamp()).map_err(denied)?;
        if self.catalogue.department(&department).is_none() {
            return Err(denied("token names no catalogued department"));
        }
        Ok(department)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_with_the_key_and_before_expiry() {
        let token = mint_token(b"secret", "education", 2_000);
        assert_eq!(verify_token(b"secret", &token, 1_000), Ok("education".into()));
        assert_eq!(verify_token(b"other", &token, 1_000), Err("token signature does not verify"));
        assert_eq!(verify_token(b"secret", &token, 2_001), Err("token expired"));
        let forged = token.replace("education", "audit");
        assert!(verify_token(b"secret", &forged, 1_000).is_err());
        assert!(verify_token(b"secret", "v1.education", 1_000).is_err());
        assert!(verify_token(b"secret", "", 1_000).is_err());
    }

    #[test]
    fn token_mode_needs_a_catalogued_department() {
        let catalogue = Arc::new(Catalogue::shipped().expect("catalogue"));
        let auth = Authenticator::new(AuthMode::Token, b"k".to_vec(), catalogue);
        let mut metadata = tonic::metadata::MetadataMap::new();
        assert_eq!(auth.authenticate(&metadata, None).map_err(|d| d.code), Err(reason::UNAUTHENTICATED));
        let far = chrono::Utc::now().timestamp() + 60;
        let bearer = |t: String| format!("Bearer {t}").parse().expect("ascii");
        metadata.insert("authorization", bearer(mint_token(b"k", "education", far)));
        assert_eq!(auth.authenticate(&metadata, None), Ok("education".into()));
        metadata.insert("authorization", bearer(mint_token(b"k", "nobody", far)));
        assert!(auth.authenticate(&metadata, None).is_err());
    }
}
