//! Who a write is recorded under. Departments' writes reach the services
//! through the gateway, which names the authenticated department and the
//! officer (`<department>:<officer_id>`) in the `popbase-actor` metadata;
//! only the gateway's mesh identity may call the services' write methods,
//! so only the gateway sets it. Writes from inside the platform (loads,
//! followers, tests) send none and are recorded under the service's name.

use tonic::Status;

use crate::ServiceError;

/// The metadata key the gateway names a forwarded write's actor in.
pub const ACTOR_METADATA_KEY: &str = "popbase-actor";

/// Longest actor accepted (a department id, ':', an officer id).
const MAX_ACTOR_CHARS: usize = 128;

/// The actor of a call: the `popbase-actor` metadata when present (checked
/// to be a code, never free text), else `default`.
pub fn of(metadata: &tonic::metadata::MetadataMap, default: &str) -> Result<String, Status> {
    let Some(value) = metadata.get(ACTOR_METADATA_KEY) else {
        return Ok(default.to_string());
    };
    value
        .to_str()
        .ok()
        .filter(|a| {
            (1..=MAX_ACTOR_CHARS).contains(&a.len())
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
        })
        .map(str::to_string)
        .ok_or_else(|| ServiceError::invalid(ACTOR_METADATA_KEY, "must be 1-128 of A-Z a-z 0-9 . _ - :").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateways_actor_or_the_default_and_never_free_text() {
        let mut metadata = tonic::metadata::MetadataMap::new();
        assert_eq!(of(&metadata, "feeds-ingest").expect("default"), "feeds-ingest");
        metadata.insert(ACTOR_METADATA_KEY, "medical_insurance:mi-01".parse().expect("ascii"));
        assert_eq!(of(&metadata, "feeds-ingest").expect("the gateway's"), "medical_insurance:mi-01");
        metadata.insert(ACTOR_METADATA_KEY, "x y; drop".parse().expect("ascii"));
        let refused = of(&metadata, "feeds-ingest").expect_err("free text");
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        assert!(!refused.message().contains("drop"));
    }
}
