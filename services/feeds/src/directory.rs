//! Who is a person of this city: the registry (户籍, any status) or the
//! residence service (居住登记). Ingest asks a chunk at a time.

use std::collections::HashSet;

use popbase_common::propagation::{TracedChannel, traced};
use popbase_common::upstream::Dialer;
use popbase_proto::household::CheckPersonsRequest;
use popbase_proto::household::household_registry_client::HouseholdRegistryClient;
use popbase_proto::residence::CheckResidentsRequest;
use popbase_proto::residence::residence_permits_client::ResidencePermitsClient;
use tonic::Status;

/// The upstream services that know persons.
#[derive(Clone)]
pub struct PersonDirectory {
    household: HouseholdRegistryClient<TracedChannel>,
    residence: ResidencePermitsClient<TracedChannel>,
}

fn lazy(what: &str, address: &str, dialer: &Dialer) -> Result<TracedChannel, String> {
    dialer.channel(what, address).map(traced)
}

impl PersonDirectory {
    /// Connects lazily (the services may start after this one), through `dialer`.
    pub fn new(household: &str, residence: &str, dialer: &Dialer) -> Result<Self, String> {
        Ok(Self {
            household: HouseholdRegistryClient::new(lazy("household", household, dialer)?),
            residence: ResidencePermitsClient::new(lazy("residence", residence, dialer)?),
        })
    }

    /// The subset of `ids` either service knows.
    pub async fn known(&self, ids: Vec<String>) -> Result<HashSet<String>, Status> {
        let mut known = HashSet::new();
        if ids.is_empty() {
            return Ok(known);
        }
        let registered = self
            .household
            .clone()
            .check_persons(CheckPersonsRequest { id_numbers: ids.clone() })
            .await?
            .into_inner()
            .known;
        let mut rest = Vec::new();
        for (id, is_known) in ids.into_iter().zip(registered.into_iter().chain(std::iter::repeat(false))) {
            if is_known {
                known.insert(id);
            } else {
                rest.push(id);
            }
        }
        if !rest.is_empty() {
            let residents = self
                .residence
                .clone()
                .check_residents(CheckResidentsRequest { id_numbers: rest.clone() })
                .await?
                .into_inner()
                .known;
            known.extend(rest.into_iter().zip(residents).filter(|(_, k)| *k).map(|(id, _)| id));
        }
        Ok(known)
    }
}
