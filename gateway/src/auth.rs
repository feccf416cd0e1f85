//! Step one of the answer path: who is calling. A department is its mTLS
//! client certificate (subject CN, mapped by the catalogue; its key pinned
//! when the catalogue lists pins) or, in token mode, a signed token
//! `v2.<department>.<issued>.<expiry>.<hmac>` no longer-lived than the
//! gateway allows. Nothing anonymous gets further; every refusal names its
//! reason (`NO_CREDENTIALS`, `TOKEN_EXPIRED`, `CERTIFICATE_REVOKED`, ...).

use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::denial::{Denial, reason};
use crate::live_catalogue::LiveCatalogue;

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

/// Tokens carry their issue time, so the gateway can enforce a maximum
/// lifetime whatever expiry the issuer chose (v1 tokens had none).
const TOKEN_VERSION: &str = "v2";

/// Clock skew tolerated between the token's issuer and this gateway.
const ISSUE_SKEW_SECS: i64 = 300;

fn signature(key: &[u8], payload: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A token for `department` issued at `issued_unix`, valid until `expires_unix` (seconds).
pub fn mint_token(key: &[u8], department: &str, issued_unix: i64, expires_unix: i64) -> String {
    let payload = format!("{TOKEN_VERSION}.{department}.{issued_unix}.{expires_unix}");
    let sig = signature(key, &payload);
    format!("{payload}.{sig}")
}

/// Why a token does not hold: the reason code and a message for the caller.
pub type TokenRefusal = (&'static str, &'static str);

/// The department a valid token names: signed with `key`, issued no later
/// than now, unexpired, and issued for at most `max_lifetime_secs`.
pub fn verify_token(key: &[u8], token: &str, now_unix: i64, max_lifetime_secs: i64) -> Result<String, TokenRefusal> {
    let invalid = |why| (reason::TOKEN_INVALID, why);
    let mut parts = token.split('.');
    let (Some(version), Some(department), Some(issued), Some(expiry), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(
            "token is not v2.<department>.<issued>.<expiry>.<signature>; mint a new one with popbase token",
        ));
    };
    if version != TOKEN_VERSION {
        return Err(invalid("unknown token version; mint a new one with popbase token"));
    }
    let expected = signature(key, &format!("{version}.{department}.{issued}.{expiry}"));
    if !same_hex(&expected, sig) {
        return Err(invalid("token signature does not verify"));
    }
    let issued: i64 = issued.parse().map_err(|_| invalid("token issue time is not a number"))?;
    let expiry: i64 = expiry.parse().map_err(|_| invalid("token expiry is not a number"))?;
    if issued > now_unix.saturating_add(ISSUE_SKEW_SECS) {
        return Err(invalid("token issued in the future"));
    }
    if expiry.saturating_sub(issued) > max_lifetime_secs {
        return Err((
            reason::TOKEN_TOO_LONG,
            "token lifetime exceeds this gateway's maximum (gateway.max_token_hours)",
        ));
    }
    if expiry < now_unix {
        return Err((reason::TOKEN_EXPIRED, "token expired"));
    }
    Ok(department.to_string())
}

/// Version tag of a resident assertion.
const ASSERTION_VERSION: &str = "r1";

/// The longest a resident assertion may be valid: the resident signed in to
/// the service platform moments ago, so an hour is ample.
pub const MAX_ASSERTION_SECS: i64 = 3600;

/// A resident assertion: the government service platform (`service_platform`)
/// vouches that the bearer signed in there as the resident with `id_number`
/// (as MyInfo relies on SingPass), signed with the gateway's token key:
/// `r1.<id_number>.<issued>.<expiry>.<hmac>`. The console's resident page
/// takes nothing else as a resident's identity.
pub fn mint_resident_assertion(key: &[u8], id_number: &str, issued_unix: i64, expires_unix: i64) -> String {
    let payload = format!("{ASSERTION_VERSION}.{id_number}.{issued_unix}.{expires_unix}");
    let sig = signature(key, &payload);
    format!("{payload}.{sig}")
}

/// The ID number a valid assertion names (its checksum is the caller's to
/// check): signed with `key`, issued no later than now, unexpired, and
/// valid for at most [`MAX_ASSERTION_SECS`].
pub fn verify_resident_assertion(key: &[u8], assertion: &str, now_unix: i64) -> Result<String, TokenRefusal> {
    let invalid = |why| (reason::TOKEN_INVALID, why);
    let mut parts = assertion.trim().split('.');
    let (Some(version), Some(id_number), Some(issued), Some(expiry), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("not a resident assertion of the service platform"));
    };
    if version != ASSERTION_VERSION {
        return Err(invalid("not a resident assertion of the service platform"));
    }
    let expected = signature(key, &format!("{version}.{id_number}.{issued}.{expiry}"));
    if !same_hex(&expected, sig) {
        return Err(invalid("assertion signature does not verify"));
    }
    let issued: i64 = issued.parse().map_err(|_| invalid("assertion issue time is not a number"))?;
    let expiry: i64 = expiry.parse().map_err(|_| invalid("assertion expiry is not a number"))?;
    if issued > now_unix.saturating_add(ISSUE_SKEW_SECS) {
        return Err(invalid("assertion issued in the future"));
    }
    if expiry.saturating_sub(issued) > MAX_ASSERTION_SECS {
        return Err((reason::TOKEN_TOO_LONG, "assertion valid for longer than an hour"));
    }
    if expiry < now_unix {
        return Err((reason::TOKEN_EXPIRED, "assertion expired; sign in to the service platform again"));
    }
    Ok(id_number.to_string())
}

/// Constant-time equality of two hex signatures.
fn same_hex(expected: &str, given: &str) -> bool {
    expected.len() == given.len() && expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

pub struct Authenticator {
    mode: AuthMode,
    /// Departments whose tokens are accepted; empty: any department's.
    token_departments: Vec<String>,
    token_key: Vec<u8>,
    max_token_lifetime_secs: i64,
    catalogue: Arc<LiveCatalogue>,
}

impl Authenticator {
    pub fn new(mode: AuthMode, token_key: Vec<u8>, max_token_hours: u32, catalogue: Arc<LiveCatalogue>) -> Self {
        Self {
            mode,
            token_departments: Vec::new(),
            token_key,
            max_token_lifetime_secs: i64::from(max_token_hours) * 3600,
            catalogue,
        }
    }

    /// Accepts tokens only of `departments` (empty: any): in `both` mode,
    /// the console's departments sign in with tokens, every other
    /// department presents its certificate.
    pub fn with_token_departments(mut self, departments: Vec<String>) -> Self {
        self.token_departments = departments;
        self
    }

    /// The calling department's id.
    pub fn authenticate(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        peer_certs: Option<&[tonic::transport::CertificateDer<'static>]>,
    ) -> Result<String, Denial> {
        if self.mode != AuthMode::Token
            && let Some(leaf) = peer_certs.and_then(|c| c.first())
        {
            return self.by_certificate(leaf);
        }
        if self.mode == AuthMode::Mtls {
            return Err(Denial::new(
                reason::CERTIFICATE_REQUIRED,
                "a department client certificate is required",
            ));
        }
        let header = metadata
            .get("authorization")
            .ok_or_else(|| Denial::new(reason::NO_CREDENTIALS, "no client certificate and no authorization token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| Denial::new(reason::TOKEN_INVALID, "authorization is not 'Bearer <token>'"))?;
        let now = chrono::Utc::now().timestamp();
        let department =
            verify_token(&self.token_key, token, now, self.max_token_lifetime_secs).map_err(|(code, why)| Denial::new(code, why))?;
        if self.catalogue.get().department(&department).is_none() {
            return Err(Denial::new(reason::UNKNOWN_DEPARTMENT, "token names no catalogued department"));
        }
        if !self.token_departments.is_empty() && !self.token_departments.contains(&department) {
            return Err(Denial::new(
                reason::CERTIFICATE_REQUIRED,
                "this gateway takes this department's calls with its client certificate only (gateway.token_departments)",
            ));
        }
        Ok(department)
    }

    /// The department of a client certificate the departments' CA signed:
    /// its subject CN names the department, and when the catalogue pins the
    /// department's keys, the certificate's key must be one of them.
    fn by_certificate(&self, leaf: &[u8]) -> Result<String, Denial> {
        let cn = popbase_common::cert::subject_common_name(leaf)
            .ok_or_else(|| Denial::new(reason::UNKNOWN_DEPARTMENT, "client certificate has no subject CN"))?;
        let catalogue = self.catalogue.get();
        let department = catalogue
            .department_by_certificate(&cn)
            .ok_or_else(|| Denial::new(reason::UNKNOWN_DEPARTMENT, "client certificate names no catalogued department"))?;
        if !department.certificate_spki_sha256.is_empty() {
            let pin = popbase_common::cert::spki_sha256(leaf)
                .ok_or_else(|| Denial::new(reason::UNKNOWN_DEPARTMENT, "client certificate has no readable public key"))?;
            if !department.certificate_spki_sha256.iter().any(|p| p.eq_ignore_ascii_case(&pin)) {
                return Err(Denial::new(
                    reason::CERTIFICATE_REVOKED,
                    "client certificate's key is not pinned for its department (revoked or replaced)",
                ));
            }
        }
        Ok(department.id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600;

    #[test]
    fn tokens_verify_only_with_the_key_before_expiry_and_within_the_lifetime() {
        let token = mint_token(b"secret", "education", 1_000, 2_000);
        assert_eq!(verify_token(b"secret", &token, 1_500, DAY), Ok("education".into()));
        assert_eq!(
            verify_token(b"other", &token, 1_500, DAY).map_err(|e| e.0),
            Err(reason::TOKEN_INVALID)
        );
        assert_eq!(
            verify_token(b"secret", &token, 2_001, DAY).map_err(|e| e.0),
            Err(reason::TOKEN_EXPIRED)
        );
        assert_eq!(
            verify_token(b"secret", &token, 1_500, 999).map_err(|e| e.0),
            Err(reason::TOKEN_TOO_LONG)
        );
        let forged = token.replace("education", "audit");
        assert_eq!(
            verify_token(b"secret", &forged, 1_500, DAY).map_err(|e| e.0),
            Err(reason::TOKEN_INVALID)
        );
        let future = mint_token(b"secret", "education", 1_000 + ISSUE_SKEW_SECS + 501, 2_000 + ISSUE_SKEW_SECS + 501);
        assert_eq!(
            verify_token(b"secret", &future, 1_500, DAY).map_err(|e| e.0),
            Err(reason::TOKEN_INVALID)
        );
        for garbage in ["v1.education.2000.abcd", "v2.education", "", "v2.a.b.c.d", "v2.a.1.2.3.4"] {
            assert_eq!(
                verify_token(b"secret", garbage, 1_500, DAY).map_err(|e| e.0),
                Err(reason::TOKEN_INVALID),
                "{garbage}"
            );
        }
    }

    #[test]
    fn resident_assertions_verify_only_signed_unexpired_and_short() {
        let a = mint_resident_assertion(b"secret", "370302201001011234", 1_000, 1_600);
        assert_eq!(verify_resident_assertion(b"secret", &a, 1_100), Ok("370302201001011234".into()));
        assert_eq!(
            verify_resident_assertion(b"other", &a, 1_100).map_err(|e| e.0),
            Err(reason::TOKEN_INVALID)
        );
        assert_eq!(
            verify_resident_assertion(b"secret", &a, 1_601).map_err(|e| e.0),
            Err(reason::TOKEN_EXPIRED)
        );
        let swapped = a.replace("370302201001011234", "370302201001015678");
        assert_eq!(
            verify_resident_assertion(b"secret", &swapped, 1_100).map_err(|e| e.0),
            Err(reason::TOKEN_INVALID)
        );
        let long = mint_resident_assertion(b"secret", "370302201001011234", 1_000, 1_000 + MAX_ASSERTION_SECS + 1);
        assert_eq!(
            verify_resident_assertion(b"secret", &long, 1_100).map_err(|e| e.0),
            Err(reason::TOKEN_TOO_LONG)
        );
        // A department token is no resident assertion.
        let token = mint_token(b"secret", "service_platform", 1_000, 1_600);
        assert_eq!(
            verify_resident_assertion(b"secret", &token, 1_100).map_err(|e| e.0),
            Err(reason::TOKEN_INVALID)
        );
    }

    #[test]
    fn token_mode_needs_a_catalogued_department() {
        let catalogue = Arc::new(LiveCatalogue::new(
            crate::catalogue::Catalogue::shipped().expect("catalogue"),
            crate::catalogue::SHIPPED.into(),
        ));
        let auth = Authenticator::new(AuthMode::Token, b"k".to_vec(), 24, catalogue);
        let mut metadata = tonic::metadata::MetadataMap::new();
        assert_eq!(auth.authenticate(&metadata, None).map_err(|d| d.code), Err(reason::NO_CREDENTIALS));
        let now = chrono::Utc::now().timestamp();
        let bearer = |t: String| format!("Bearer {t}").parse().expect("ascii");
        metadata.insert("authorization", bearer(mint_token(b"k", "education", now, now + 60)));
        assert_eq!(auth.authenticate(&metadata, None), Ok("education".into()));
        metadata.insert("authorization", bearer(mint_token(b"k", "nobody", now, now + 60)));
        assert_eq!(
            auth.authenticate(&metadata, None).map_err(|d| d.code),
            Err(reason::UNKNOWN_DEPARTMENT)
        );
        metadata.insert("authorization", bearer(mint_token(b"k", "education", now, now + 25 * 3600)));
        assert_eq!(auth.authenticate(&metadata, None).map_err(|d| d.code), Err(reason::TOKEN_TOO_LONG));
        let console_only =
            Authenticator::new(AuthMode::Both, b"k".to_vec(), 24, auth.catalogue.clone()).with_token_departments(vec!["audit".into()]);
        metadata.insert("authorization", bearer(mint_token(b"k", "audit", now, now + 60)));
        assert_eq!(console_only.authenticate(&metadata, None), Ok("audit".into()));
        metadata.insert("authorization", bearer(mint_token(b"k", "education", now, now + 60)));
        assert_eq!(
            console_only.authenticate(&metadata, None).map_err(|d| d.code),
            Err(reason::CERTIFICATE_REQUIRED)
        );
        metadata.insert("authorization", "Basic abc".parse().expect("ascii"));
        assert_eq!(auth.authenticate(&metadata, None).map_err(|d| d.code), Err(reason::TOKEN_INVALID));
    }
}
