//! What the `residence` role serves.

use popbase_common::ops::OpsService;
use popbase_common::server::RoleServices;
use popbase_common::{Config, Role};

use crate::Permits;

pub fn services(permits: &Permits, config: &Config) -> RoleServices {
    let mut services = RoleServices::new(Role::Residence);
    services.add(crate::grpc::PermitsService::new(permits.clone()).into_server());
    services.add(OpsService::new(Role::Residence, vec![permits.store().clone()], config.backup_root()).into_server());
    services
}
