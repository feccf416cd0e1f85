//! popbase's public gRPC contract.
//!
//! The `.proto` files under `proto/popbase/<area>/v1/` are the source of truth:
//! departments generate their Python, Java and Go clients from them. This crate
//! holds the Rust code generated from them plus small conversions.

#![allow(clippy::large_enum_variant, clippy::doc_lazy_continuation)]

pub mod codec;
mod convert;

/// Generated code, one module per protobuf package.
pub mod popbase {
    pub mod changes {
        pub mod v1 {
            tonic::include_proto!("popbase.changes.v1");
        }
    }
    pub mod common {
        pub mod v1 {
            tonic::include_proto!("popbase.common.v1");
        }
    }
    pub mod household {
        pub mod v1 {
            tonic::include_proto!("popbase.household.v1");
        }
    }
    pub mod residence {
        pub mod v1 {
            tonic::include_proto!("popbase.residence.v1");
        }
    }
    pub mod feeds {
        pub mod v1 {
            tonic::include_proto!("popbase.feeds.v1");
        }
    }
    pub mod gateway {
        pub mod v1 {
            tonic::include_proto!("popbase.gateway.v1");
        }
    }
    pub mod ledger {
        pub mod v1 {
            tonic::include_proto!("popbase.ledger.v1");
        }
    }
    pub mod ops {
        pub mod v1 {
            tonic::include_proto!("popbase.ops.v1");
        }
    }
}

pub use popbase::changes::v1 as changes;
pub use popbase::common::v1 as common;
pub use popbase::feeds::v1 as feeds;
pub use popbase::gateway::v1 as gateway;
pub use popbase::household::v1 as household;
pub use popbase::ledger::v1 as ledger;
pub use popbase::ops::v1 as ops;
pub use popbase::residence::v1 as residence;

/// Encoded `FileDescriptorSet` of every popbase proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/popbase_descriptor.bin"));
