//! Who may call what on an internal port: the one table of the mesh.
//! Roles other than the gateway get single read methods, never a whole
//! service, so no role but the gateway can write to another's data.
//!
//! | service | gateway | others |
//! |---|---|---|
//! | `popbase.household.v1.HouseholdRegistry` | all | feeds: `CheckPersons` (is this a person of the city) |
//! | `popbase.household.v1.LifeEvents` | all | residence: `SettlementsSince` (end the permits of settlers) |
//! | `popbase.household.v1.Settlement`, `RegistryStatistics` | all | — |
//! | `popbase.residence.v1.ResidencePermits` | all | feeds: `CheckResidents`; household: `GetResident` (a settlement applicant's permit) |
//! | `popbase.residence.v1.Entitlements` | all | — |
//! | `popbase.feeds.v1.Feeds` | all | residence: `RecordsOf` (what departments know of a resident), `CheckInsurance`, `CheckEnrolled` (政策找人 for resident insurance and education, a batch at a time); household: `RecordsOf` (a settlement applicant's pension, insurance and housing) |
//! | `popbase.ledger.v1.Ledger` (consents, audit appends) | all | — |
//! | `arrow.flight.protocol.FlightService` (identified internal datasets) | all | — |
//! | `popbase.changes.v1.ChangeFeed` (typed change logs, for subscriptions) | all | — |
//! | `popbase.ops.v1.Ops` (checkpoints, store figures) | `GetStoreStats` (the operators' health page) | backup: all |
//! | `grpc.health.v1.Health`, reflection | all | any mesh identity |
//!
//! An all-in-one process may call anything on its own ports (see
//! [`super::guard`]: split roles refuse the all-in-one identity). A service
//! or method not in the table is refused to everyone.

use super::MeshIdentity;
use super::MeshIdentity::{AllInOne, Backup, Feeds, Gateway, Household, Residence};

/// The stable reason code of a mesh refusal (`popbase-reason`).
pub const ROLE_NOT_ALLOWED: &str = "ROLE_NOT_ALLOWED";

/// Services any mesh identity may call: those every port serves.
use crate::server::EVERY_PORT as OPEN;

/// Services the gateway calls, whole.
const GATEWAY: [&str; 10] = [
    "popbase.household.v1.HouseholdRegistry",
    "popbase.household.v1.LifeEvents",
    "popbase.household.v1.Settlement",
    "popbase.household.v1.RegistryStatistics",
    "popbase.residence.v1.ResidencePermits",
    "popbase.residence.v1.Entitlements",
    "popbase.feeds.v1.Feeds",
    "popbase.ledger.v1.Ledger",
    "arrow.flight.protocol.FlightService",
    "popbase.changes.v1.ChangeFeed",
];

/// Single methods granted to roles other than the gateway.
const METHODS: [(&str, MeshIdentity); 8] = [
    ("/popbase.household.v1.HouseholdRegistry/CheckPersons", Feeds),
    ("/popbase.residence.v1.ResidencePermits/CheckResidents", Feeds),
    ("/popbase.household.v1.LifeEvents/SettlementsSince", Residence),
    ("/popbase.feeds.v1.Feeds/RecordsOf", Residence),
    ("/popbase.feeds.v1.Feeds/CheckInsurance", Residence),
    ("/popbase.feeds.v1.Feeds/CheckEnrolled", Residence),
    // Settlements are decided on the platform's facts, not declarations.
    ("/popbase.feeds.v1.Feeds/RecordsOf", Household),
    ("/popbase.residence.v1.ResidencePermits/GetResident", Household),
];

/// The backup job's service.
const OPS: &str = "popbase.ops.v1.Ops";

/// The one Ops method the gateway may call: figures, never checkpoints or backups.
const GATEWAY_OPS: &str = "/popbase.ops.v1.Ops/GetStoreStats";

/// Whether `caller` may call the method at `path` (`/pkg.Service/Method`).
pub fn allowed(path: &str, caller: MeshIdentity) -> bool {
    let service = service_of(path);
    match caller {
        AllInOne => true,
        _ if OPEN.contains(&service) => true,
        Gateway => GATEWAY.contains(&service) || path == GATEWAY_OPS,
        Backup => service == OPS,
        other => METHODS.iter().any(|(method, who)| *method == path && *who == other),
    }
}

/// Whether `service` is one the mesh knows (and so may be named in logs
/// and messages: a caller's unknown path is its own text).
pub fn known(service: &str) -> bool {
    OPEN.contains(&service) || GATEWAY.contains(&service) || service == OPS
}

/// The service part of a gRPC request path (`/pkg.Service/Method`).
pub fn service_of(path: &str) -> &str {
    path.strip_prefix('/')
        .and_then(|rest| rest.split_once('/'))
        .map_or("", |(service, _)| service)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesh::MeshIdentity::{Household, Ledger};

    #[test]
    fn only_the_gateway_appends_to_the_ledger_or_reads_internal_datasets() {
        for caller in MeshIdentity::ALL {
            let expected = matches!(caller, Gateway | AllInOne);
            assert_eq!(allowed("/popbase.ledger.v1.Ledger/Append", caller), expected, "{caller:?}");
            assert_eq!(allowed("/popbase.ledger.v1.Ledger/PutConsent", caller), expected, "{caller:?}");
            assert_eq!(
                allowed("/arrow.flight.protocol.FlightService/DoGet", caller),
                expected,
                "{caller:?}"
            );
        }
    }

    #[test]
    fn roles_get_the_read_methods_they_need_and_no_writes() {
        assert!(allowed("/popbase.household.v1.LifeEvents/SettlementsSince", Residence));
        assert!(
            !allowed("/popbase.household.v1.LifeEvents/RegisterDeath", Residence),
            "residence writes no events"
        );
        assert!(!allowed("/popbase.household.v1.LifeEvents/SettlementsSince", Feeds));
        assert!(allowed("/popbase.household.v1.HouseholdRegistry/CheckPersons", Feeds));
        assert!(
            !allowed("/popbase.household.v1.HouseholdRegistry/ListPersons", Feeds),
            "no bulk reads"
        );
        assert!(!allowed("/popbase.household.v1.HouseholdRegistry/CheckPersons", Ledger));
        assert!(allowed("/popbase.residence.v1.ResidencePermits/CheckResidents", Feeds));
        assert!(
            !allowed("/popbase.residence.v1.ResidencePermits/CancelPermit", Feeds),
            "feeds cancels no permits"
        );
        assert!(allowed("/popbase.feeds.v1.Feeds/RecordsOf", Residence));
        assert!(allowed("/popbase.feeds.v1.Feeds/CheckInsurance", Residence));
        assert!(allowed("/popbase.feeds.v1.Feeds/CheckEnrolled", Residence));
        assert!(!allowed("/popbase.feeds.v1.Feeds/CheckEnrolled", Household));
        assert!(!allowed("/popbase.feeds.v1.Feeds/StreamInsured", Residence), "no bulk reads");
        assert!(
            !allowed("/popbase.household.v1.HouseholdRegistry/StreamPersonIds", Feeds),
            "no bulk reads"
        );
        assert!(!allowed("/popbase.feeds.v1.Feeds/Ingest", Residence), "residence ingests no feeds");
        assert!(allowed("/popbase.feeds.v1.Feeds/RecordsOf", Household), "settlement facts");
        assert!(allowed("/popbase.residence.v1.ResidencePermits/GetResident", Household));
        assert!(!allowed("/popbase.feeds.v1.Feeds/Ingest", Household), "household ingests no feeds");
        assert!(
            !allowed("/popbase.residence.v1.ResidencePermits/ListResidents", Household),
            "no bulk reads"
        );
        assert!(allowed("/popbase.feeds.v1.Feeds/Ingest", Gateway));
        assert!(allowed("/popbase.ops.v1.Ops/CreateCheckpoint", Backup));
        assert!(!allowed("/popbase.ops.v1.Ops/CreateCheckpoint", Gateway));
        assert!(!allowed("/popbase.ops.v1.Ops/CreateBackup", Gateway));
        assert!(allowed("/popbase.ops.v1.Ops/GetStoreStats", Gateway), "figures for the health page");
        assert!(!allowed("/popbase.ops.v1.Ops/GetStoreStats", Feeds));
        assert!(!allowed("/popbase.household.v1.Settlement/Evaluate", Backup));
        assert!(allowed("/grpc.health.v1.Health/Check", Backup));
        assert!(!allowed("/popbase.unknown.v1.Thing/Do", Gateway), "unknown services are refused");
        assert!(!known("popbase.unknown.v1.Thing") && known("popbase.ops.v1.Ops") && known("grpc.health.v1.Health"));
    }

    #[test]
    fn request_paths_name_their_service() {
        assert_eq!(service_of("/popbase.ledger.v1.Ledger/Append"), "popbase.ledger.v1.Ledger");
        assert_eq!(service_of("/x"), "");
        assert_eq!(service_of(""), "");
        assert_eq!(service_of("popbase.ledger.v1.Ledger/Append"), "");
    }
}
