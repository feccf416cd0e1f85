//! What the `feeds` role serves.

use popbase_common::ops::OpsService;
use popbase_common::server::RoleServices;
use popbase_common::{Config, Role};

use crate::FeedStore;

pub fn services(feeds: &FeedStore, config: &Config) -> RoleServices {
    let mut services = RoleServices::new(Role::Feeds);
    services.add(OpsService::new(Role::Feeds, vec![feeds.store().clone()], config.backup_root()).into_server());
    services
}
