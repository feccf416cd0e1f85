//! Why the gateway refuses: stable reason codes, carried to callers in the
//! `popbase-reason` metadata and stored in the audit record.

use popbase_common::ServiceError;

pub mod reason {
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    pub const NOT_IN_CATALOGUE: &str = "NOT_IN_CATALOGUE";
    pub const NOT_APPROVED: &str = "NOT_APPROVED";
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
            reason::UNAUTHENTICATED => ServiceError::Unauthenticated(d.reason),
            reason::QUOTA_EXCEEDED | reason::RATE_LIMITED => ServiceError::ResourceExhausted {
                code: d.code,
                reason: d.reason,
            },
            code => ServiceError::PermissionDenied { code, reason: d.reason },
        }
    }
}
