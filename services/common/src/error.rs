//! The one mapping from service errors to gRPC statuses.
//!
//! Services return [`ServiceError`]; gRPC adapters convert with `?` through
//! `From<ServiceError> for Status`. Messages name fields and reasons but never
//! carry personal data in clear: callers mask identifiers before building errors.

use popbase_storage::StorageError;
use thiserror::Error;
use tonic::{Code, Status};

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Metadata key carrying the stable reason code of a denial.
pub const REASON_METADATA_KEY: &str = "popbase-reason";
/// Metadata key naming the offending request field of an `InvalidArgument`.
pub const FIELD_METADATA_KEY: &str = "popbase-field";

#[derive(Debug, Error)]
pub enum ServiceError {
    /// Bad input: the field path (e.g. `child.id_number`) and why.
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    #[error("{what} not found")]
    NotFound { what: String },
    /// The request is well-formed but the registry's state forbids it.
    #[error("{field}: {reason}")]
    FailedPrecondition { field: String, reason: String },
    /// Lost a race with a concurrent change; retrying may succeed.
    #[error("aborted: {0}")]
    Aborted(String),
    /// No credential, or one that does not hold; `code` says which
    /// (`NO_CREDENTIALS`, `TOKEN_EXPIRED`, `CERTIFICATE_REVOKED`, ...).
    #[error("unauthenticated: {reason}")]
    Unauthenticated { code: &'static str, reason: String },
    /// Authorised callers only; `code` is a stable reason such as `NO_CONSENT`.
    #[error("{code}: {reason}")]
    PermissionDenied { code: &'static str, reason: String },
    #[error("{code}: {reason}")]
    ResourceExhausted { code: &'static str, reason: String },
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.to_string(),
        }
    }

    /// The same `InvalidArgument` about an entry of a repeated field:
    /// validators are called with the list's name and only a failure pays
    /// for formatting `list[i]`.
    pub fn at_entry(self, index: usize) -> Self {
        match self {
            Self::InvalidArgument { field, reason } => Self::InvalidArgument {
                field: format!("{field}[{index}]"),
                reason,
            },
            other => other,
        }
    }

    pub fn precondition(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::FailedPrecondition {
            field: field.into(),
            reason: reason.to_string(),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound { what: what.into() }
    }

    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument { .. } => Code::InvalidArgument,
            Self::NotFound { .. } => Code::NotFound,
            Self::FailedPrecondition { .. } => Code::FailedPrecondition,
            Self::Aborted(_) => Code::Aborted,
            Self::Unauthenticated { .. } => Code::Unauthenticated,
            Self::PermissionDenied { .. } => Code::PermissionDenied,
            Self::ResourceExhausted { .. } => Code::ResourceExhausted,
            Self::Unavailable(_) => Code::Unavailable,
            Self::Storage(StorageError::Conflict { .. }) => Code::Aborted,
            Self::Storage(StorageError::Locked { .. }) => Code::Unavailable,
            Self::Storage(StorageError::Corrupt { .. } | StorageError::Decode { .. }) => Code::DataLoss,
            Self::Storage(_) | Self::Internal(_) => Code::Internal,
        }
    }
}

/// The `popbase-reason` of every ABORTED answer: the call lost a race with
/// another change to the same record, nothing was applied, and reading
/// again and retrying may succeed.
pub const CONFLICT: &str = "CONFLICT";

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Status {
        let code = err.code();
        let message = match &err {
            // Engine details are for operators' logs, not for callers.
            ServiceError::Storage(StorageError::Conflict { table, .. }) => {
                format!("concurrent change to {table}; re-read and retry")
            }
            ServiceError::Storage(_) | ServiceError::Internal(_) => {
                tracing::error!(error = %err, "internal error answered as {code:?}");
                "internal error; see server logs".to_string()
            }
            other => other.to_string(),
        };
        let mut status = Status::new(code, message);
        let metadata = status.metadata_mut();
        match &err {
            ServiceError::PermissionDenied { code, .. }
            | ServiceError::ResourceExhausted { code, .. }
            | ServiceError::Unauthenticated { code, .. } => {
                metadata.insert(REASON_METADATA_KEY, tonic::metadata::MetadataValue::from_static(code));
            }
            ServiceError::InvalidArgument { field, .. } | ServiceError::FailedPrecondition { field, .. } => {
                if let Ok(value) = field.parse() {
                    metadata.insert(FIELD_METADATA_KEY, value);
                }
            }
            ServiceError::Aborted(_) | ServiceError::Storage(StorageError::Conflict { .. }) => {
                metadata.insert(REASON_METADATA_KEY, tonic::metadata::MetadataValue::from_static(CONFLICT));
            }
            _ => {}
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_of_a_list_is_named_by_its_index() {
        let at = ServiceError::invalid("guardian_id_numbers", "check digit does not match").at_entry(1);
        assert!(
            matches!(&at, ServiceError::InvalidArgument { field, reason } if field == "guardian_id_numbers[1]" && reason == "check digit does not match"),
            "{at:?}"
        );
        let other = ServiceError::Unavailable("down".into()).at_entry(1);
        assert!(matches!(other, ServiceError::Unavailable(_)));
    }

    #[test]
    fn invalid_argument_names_the_field() {
        let status = Status::from(ServiceError::invalid("child.id_number", "check digit does not match"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.message(), "invalid child.id_number: check digit does not match");
        assert_eq!(
            status.metadata().get(FIELD_METADATA_KEY).and_then(|v| v.to_str().ok()),
            Some("child.id_number")
        );
    }

    #[test]
    fn denials_carry_their_reason_code() {
        let status = Status::from(ServiceError::PermissionDenied {
            code: "NO_CONSENT",
            reason: "no consent on file".into(),
        });
        assert_eq!(status.code(), Code::PermissionDenied);
        assert_eq!(
            status.metadata().get(REASON_METADATA_KEY).and_then(|v| v.to_str().ok()),
            Some("NO_CONSENT")
        );
    }

    #[test]
    fn storage_conflicts_abort_and_internals_stay_hidden() {
        let conflict = StorageError::Conflict {
            table: "persons".into(),
            expected: Some(1),
            found: Some(2),
        };
        let status = Status::from(ServiceError::from(conflict));
        assert_eq!(status.code(), Code::Aborted);
        assert_eq!(
            status.metadata().get(REASON_METADATA_KEY).and_then(|v| v.to_str().ok()),
            Some(CONFLICT)
        );
        let status = Status::from(ServiceError::Storage(StorageError::Engine("IO error: /secret/path".into())));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("/secret/path"));
    }
}
