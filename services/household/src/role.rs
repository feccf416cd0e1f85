//! What the `household` role serves.

use std::sync::Arc;

use popbase_common::changes::ChangeFeedService;
use popbase_common::ops::OpsService;
use popbase_common::server::RoleServices;
use popbase_common::{Config, Role};

use crate::Registry;
use crate::export::RegistryExports;
use crate::grpc::{LifeEventsService, RegistryService, SettlementService, StatisticsService};
use crate::settlement::{PlatformSources, PolicySet};

/// The gRPC services of the household role over an open registry;
/// `platform` (the feeds and residence roles) supplies settlement facts.
pub fn services(registry: &Registry, policies: Arc<PolicySet>, platform: Option<PlatformSources>, config: &Config) -> RoleServices {
    let mut services = RoleServices::new(Role::Household);
    services.add(RegistryService::new(registry.clone()).into_server());
    services.add(LifeEventsService::new(registry.clone(), Arc::clone(&policies), platform.clone()).into_server());
    services.add(SettlementService::new(registry.clone(), policies, platform).into_server());
    services.add(StatisticsService::new(registry.clone()).into_server());
    services.add(popbase_export::flight::SourceFlight::server(Arc::new(RegistryExports::new(
        registry.clone(),
    ))));
    let changes = crate::changes::RegistryChanges::new(registry.clone());
    services.add(ChangeFeedService::new(Arc::new(changes)).into_server());
    services.add(OpsService::new(Role::Household, vec![registry.store().clone()], config).into_server());
    services
}
