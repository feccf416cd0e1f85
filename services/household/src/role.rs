//! What the `household` role serves.

use popbase_common::ops::OpsService;
use popbase_common::server::RoleServices;
use popbase_common::{Config, Role};

use crate::Registry;

/// The gRPC services of the household role over an open registry.
pub fn services(registry: &Registry, config: &Config) -> RoleServices {
    let mut services = RoleServices::new(Role::Household);
    services.add(crate::grpc::RegistryService::new(registry.clone()).into_server());
    services.add(OpsService::new(Role::Household, vec![registry.store().clone()], config.backup_root()).into_server());
    services
}
