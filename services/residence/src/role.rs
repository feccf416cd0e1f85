//! What the `residence` role serves.

use popbase_common::changes::ChangeFeedService;
use popbase_common::ops::OpsService;
use popbase_common::server::RoleServices;
use popbase_common::{Config, Role};

use popbase_common::upstream::Upstream;
use popbase_proto::feeds::feeds_client::FeedsClient;

use crate::Permits;

/// The residence role; `feeds` answers what the departments know of a resident.
pub fn services(permits: &Permits, feeds: FeedsClient<Upstream>, config: &Config) -> RoleServices {
    let mut services = RoleServices::new(Role::Residence);
    services.add(crate::grpc::PermitsService::new(permits.clone()).into_server());
    services.add(crate::entitlements::EntitlementsService::new(permits.clone(), feeds).into_server());
    services.add(popbase_export::flight::SourceFlight::server(std::sync::Arc::new(
        crate::export::PermitExports::new(permits.clone()),
    )));
    let changes = crate::changes::PermitChanges::new(permits.clone());
    services.add(ChangeFeedService::new(std::sync::Arc::new(changes)).into_server());
    services.add(OpsService::new(Role::Residence, vec![permits.store().clone()], config).into_server());
    services
}
