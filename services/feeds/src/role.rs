//! What the `feeds` role serves.

use popbase_common::changes::ChangeFeedService;
use popbase_common::ops::OpsService;
use popbase_common::server::RoleServices;
use popbase_common::{Config, Role};

use crate::FeedStore;
use crate::directory::PersonDirectory;
use crate::grpc::FeedsService;

/// The feeds role; `directory` tells which persons the city knows.
pub fn services(feeds: &FeedStore, directory: PersonDirectory, config: &Config) -> RoleServices {
    let mut services = RoleServices::new(Role::Feeds);
    services.add(FeedsService::new(feeds.clone(), directory).into_server());
    services.add(popbase_export::flight::SourceFlight::server(std::sync::Arc::new(
        crate::export::FeedExports::new(feeds.clone()),
    )));
    let changes = crate::changes::FeedChanges::new(feeds.clone());
    services.add(ChangeFeedService::new(std::sync::Arc::new(changes)).into_server());
    services.add(OpsService::new(Role::Feeds, vec![feeds.store().clone()], config).into_server());
    services
}
