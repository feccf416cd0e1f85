//! The ledger's messages on the wire: conversions shared by the client
//! ([`super::RemoteLedger`]) and the server (`crate::grpc::ledger`).

use popbase_proto::ledger;

use crate::consent::GrantKey;
use crate::denial::reason;

/// Most records one `AppendMany` chains; a client splits longer runs.
pub const MAX_APPEND_ENTRIES: usize = 4096;

pub fn grant_key(key: &GrantKey<'_>) -> ledger::GrantKey {
    ledger::GrantKey {
        subject: key.subject.to_string(),
        department: key.department.to_string(),
        interface: key.interface.to_string(),
        purpose: key.purpose.to_string(),
    }
}

pub fn borrow_key(key: &ledger::GrantKey) -> GrantKey<'_> {
    GrantKey {
        subject: &key.subject,
        department: &key.department,
        interface: &key.interface,
        purpose: &key.purpose,
    }
}

/// The static reason code of a consent denial the ledger answered.
pub fn consent_reason(code: &str) -> Option<&'static str> {
    [
        reason::NO_CONSENT,
        reason::CONSENT_EXPIRED,
        reason::CONSENT_REVOKED,
        reason::CONSENT_USED_UP,
    ]
    .into_iter()
    .find(|known| *known == code)
}
