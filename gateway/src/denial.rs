//! Why the gateway refuses: stable reason codes, carried to callers in the
//! `popbase-reason` metadata and stored in the audit record.

use popbase_common::ServiceError;

pub mod reason {
    // Authentication (answered UNAUTHENTICATED).
    /// Neither a client certificate nor an `authorization` token.
    pub const NO_CREDENTIALS: &str = "NO_CREDENTIALS";
    /// The token's expiry has passed.
    pub const TOKEN_EXPIRED: &str = "TOKEN_EXPIRED";
    /// Not a token of this gateway: malformed, unknown version, bad signature.
    pub const TOKEN_INVALID: &str = "TOKEN_INVALID";
    /// Issued for longer than the gateway's maximum token lifetime.
    pub const TOKEN_TOO_LONG: &str = "TOKEN_TOO_LONG";
    /// The credential names no department of the catalogue.
    pub const UNKNOWN_DEPARTMENT: &str = "UNKNOWN_DEPARTMENT";
    /// A certificate the catalogue no longer pins for its department.
    pub const CERTIFICATE_REVOKED: &str = "CERTIFICATE_REVOKED";
    /// This gateway accepts certificates only (mTLS mode) and none came.
    pub const CERTIFICATE_REQUIRED: &str = "CERTIFICATE_REQUIRED";

    /// Whether `code` is an authentication failure.
    pub fn is_authentication(code: &str) -> bool {
        matches!(
            code,
            NO_CREDENTIALS
                | TOKEN_EXPIRED
                | TOKEN_INVALID
                | TOKEN_TOO_LONG
                | UNKNOWN_DEPARTMENT
                | CERTIFICATE_REVOKED
                | CERTIFICATE_REQUIRED
        )
    }

    // Authorisation and limits.
    pub const NOT_IN_CATALOGUE: &str = "NOT_IN_CATALOGUE";
    pub const NOT_APPROVED: &str = "NOT_APPROVED";
    /// A write of an event or record kind the department's approval does not list.
    pub const KIND_NOT_APPROVED: &str = "KIND_NOT_APPROVED";
    pub const PURPOSE_MISMATCH: &str = "PURPOSE_MISMATCH";
    pub const NO_CONSENT: &str = "NO_CONSENT";
    pub const CONSENT_EXPIRED: &str = "CONSENT_EXPIRED";
    pub const CONSENT_REVOKED: &str = "CONSENT_REVOKED";
    pub const CONSENT_USED_UP: &str = "CONSENT_USED_UP";
    pub const NOT_GUARDIAN: &str = "NOT_GUARDIAN";
    pub const QUOTA_EXCEEDED: &str = "QUOTA_EXCEEDED";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// Audited outcome of a call refused for malformed input.
    pub const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
    /// Audited outcome of a call whose fetch failed after it was authorised.
    pub const FETCH_FAILED: &str = "FETCH_FAILED";
    /// Audited outcome of an admitted call the owning service refused for
    /// the state of its records (e.g. a death registered twice).
    pub const FAILED_PRECONDITION: &str = "FAILED_PRECONDITION";
    /// Audited outcome of an admitted write that lost a race with another
    /// change to the same record (answered ABORTED: read again and retry).
    pub const CONFLICT: &str = popbase_common::error::CONFLICT;
    /// A caller past its budget of refusals per window: answered at once
    /// and counted into the window's summary record, not audited one by one.
    pub const REFUSAL_FLOOD: &str = "REFUSAL_FLOOD";
}

/// A refusal with its stable code and a reason for the caller (no personal data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    pub code: &'static str,
    pub reason: String,
}

impl Denial {
    pub fn new(code: &'static str, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
        }
    }
}

impl From<Denial> for ServiceError {
    fn from(d: Denial) -> Self {
        match d.code {
            code if reason::is_authentication(code) => ServiceError::Unauthenticated { code, reason: d.reason },
            reason::QUOTA_EXCEEDED | reason::RATE_LIMITED => ServiceError::ResourceExhausted {
                code: d.code,
                reason: d.reason,
            },
            code => ServiceError::PermissionDenied { code, reason: d.reason },
        }
    }
}
