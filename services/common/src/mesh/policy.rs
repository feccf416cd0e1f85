//! Who may call which internal service: the one table of the mesh.
//!
//! | service | callers |
//! |---|---|
//! | `popbase.household.v1.HouseholdRegistry` | gateway; feeds (`CheckPersons`: is this a person of the city) |
//! | `popbase.household.v1.LifeEvents` | gateway; residence (`SettlementsSince`: end the permits of settlers) |
//! | `popbase.household.v1.Settlement`, `RegistryStatistics` | gateway |
//! | `popbase.residence.v1.ResidencePermits` | gateway; feeds (`CheckResidents`) |
//! | `popbase.residence.v1.Entitlements` | gateway |
//! | `popbase.feeds.v1.Feeds` | gateway; residence (what departments know of a resident) |
//! | `popbase.ledger.v1.Ledger` (consents, audit appends) | gateway only |
//! | `arrow.flight.protocol.FlightService` (identified internal datasets) | gateway only |
//! | `popbase.ops.v1.Ops` (checkpoints, store figures) | backup |
//! | `grpc.health.v1.Health`, reflection | any mesh identity |
//!
//! An all-in-one process may call anything: it serves every role itself.
//! A service not in the table is refused to everyone.

use super::MeshIdentity;
use super::MeshIdentity::{AllInOne, Backup, Feeds, Gateway, Residence};

/// The stable reason code of a mesh refusal (`popbase-reason`).
pub const ROLE_NOT_ALLOWED: &str = "ROLE_NOT_ALLOWED";

/// The identities allowed to call `service` (fully qualified gRPC service
/// name); `None` for a service any mesh identity may call.
fn callers(service: &str) -> Option<&'static [MeshIdentity]> {
    Some(match service {
        "grpc.health.v1.Health" | "grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection" => {
            return None;
        }
        "popbase.household.v1.HouseholdRegistry" => &[Gateway, Feeds],
        "popbase.household.v1.LifeEvents" => &[Gateway, Residence],
        "popbase.household.v1.Settlement" | "popbase.household.v1.RegistryStatistics" => &[Gateway],
        "popbase.residence.v1.ResidencePermits" => &[Gateway, Feeds],
        "popbase.residence.v1.Entitlements" => &[Gateway],
        "popbase.feeds.v1.Feeds" => &[Gateway, Residence],
        "popbase.ledger.v1.Ledger" => &[Gateway],
        "arrow.flight.protocol.FlightService" => &[Gateway],
        "popbase.ops.v1.Ops" => &[Backup],
        _ => &[],
    })
}

/// Whether `caller` may call `service`.
pub fn allowed(service: &str, caller: MeshIdentity) -> bool {
    caller == AllInOne || callers(service).is_none_or(|allowed| allowed.contains(&caller))
}

/// Whether `service` is one the mesh knows (and so may be named in logs
/// and messages: a caller's unknown path is its own text).
pub fn known(service: &str) -> bool {
    callers(service).is_none_or(|allowed| !allowed.is_empty())
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
            assert_eq!(allowed("popbase.ledger.v1.Ledger", caller), expected, "{caller:?}");
            assert_eq!(allowed("arrow.flight.protocol.FlightService", caller), expected, "{caller:?}");
        }
    }

    #[test]
    fn roles_call_only_what_they_need() {
        assert!(allowed("popbase.household.v1.LifeEvents", Residence));
        assert!(!allowed("popbase.household.v1.LifeEvents", Feeds));
        assert!(allowed("popbase.household.v1.HouseholdRegistry", Feeds));
        assert!(!allowed("popbase.household.v1.HouseholdRegistry", Ledger));
        assert!(allowed("popbase.feeds.v1.Feeds", Residence));
        assert!(!allowed("popbase.feeds.v1.Feeds", Household));
        assert!(allowed("popbase.ops.v1.Ops", Backup));
        assert!(!allowed("popbase.ops.v1.Ops", Gateway));
        assert!(!allowed("popbase.household.v1.Settlement", Backup));
        assert!(allowed("grpc.health.v1.Health", Backup));
        assert!(!allowed("popbase.unknown.v1.Thing", Gateway), "unknown services are refused");
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
