//! What the `gateway` role serves.

use popbase_common::server::RoleServices;
use popbase_common::{Config, Role};

pub fn services(_config: &Config) -> RoleServices {
    RoleServices::new(Role::Gateway)
}
