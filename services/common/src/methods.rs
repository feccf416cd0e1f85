//! The gRPC methods this binary serves, read once from the descriptor sets
//! it is built with. Metric labels and logs name a request's method only
//! when it is one of these: a caller's path is its own text, and as a label
//! it could break the exposition format or add a series per junk path.

use std::collections::HashSet;
use std::sync::LazyLock;

use prost::Message as _;

/// What a request to an unknown path is counted as.
pub const UNKNOWN: &str = "unknown";

/// Arrow Flight's methods (its descriptor set is not exported by arrow-flight).
const FLIGHT: [&str; 10] = [
    "Handshake",
    "ListFlights",
    "GetFlightInfo",
    "PollFlightInfo",
    "GetSchema",
    "DoGet",
    "DoPut",
    "DoExchange",
    "DoAction",
    "ListActions",
];

static METHODS: LazyLock<HashSet<String>> = LazyLock::new(|| {
    let mut methods = HashSet::new();
    let sets = [
        popbase_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    for encoded in sets {
        // The sets are compiled into the binary; one that does not decode
        // only leaves its methods counted as unknown.
        let Ok(set) = prost_types::FileDescriptorSet::decode(encoded) else {
            continue;
        };
        for file in set.file {
            let package = file.package.unwrap_or_default();
            for service in file.service {
                let name = service.name.unwrap_or_default();
                for method in service.method {
                    methods.insert(format!("/{package}.{name}/{}", method.name.unwrap_or_default()));
                }
            }
        }
    }
    methods.extend(FLIGHT.iter().map(|m| format!("/arrow.flight.protocol.FlightService/{m}")));
    methods
});

/// `path` when it names a method this binary serves, else [`UNKNOWN`].
pub fn label(path: &str) -> &'static str {
    METHODS.get(path).map_or(UNKNOWN, String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_methods_are_named_and_anything_else_is_unknown() {
        assert_eq!(label("/popbase.ops.v1.Ops/GetStoreStats"), "/popbase.ops.v1.Ops/GetStoreStats");
        assert_eq!(label("/grpc.health.v1.Health/Check"), "/grpc.health.v1.Health/Check");
        assert_eq!(
            label("/arrow.flight.protocol.FlightService/DoGet"),
            "/arrow.flight.protocol.FlightService/DoGet"
        );
        assert_eq!(
            label("/popbase.gateway.v1.DepartmentFeeds/Submit"),
            "/popbase.gateway.v1.DepartmentFeeds/Submit"
        );
        for junk in ["/popbase.x\",role=\"gateway\",code=\"0", "/popbase.ops.v1.Ops/Nope", "", "/"] {
            assert_eq!(label(junk), UNKNOWN, "{junk}");
        }
    }
}
