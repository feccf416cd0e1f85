//! `RegistryStatistics`: population by division and changes by period.

use popbase_common::ServiceError;
use popbase_common::validate;
use popbase_proto::household::registry_statistics_server::{RegistryStatistics, RegistryStatisticsServer};
use popbase_proto::household::{ChangesRequest, ChangesResponse, PopulationRequest, PopulationResponse};
use tonic::{Request, Response, Status};

use super::{blocking, input};
use crate::Registry;

pub struct StatisticsService {
    registry: Registry,
}

impl StatisticsService {
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }

    pub fn into_server(self) -> RegistryStatisticsServer<Self> {
        RegistryStatisticsServer::new(self)
    }
}

#[tonic::async_trait]
impl RegistryStatistics for StatisticsService {
    async fn population(&self, request: Request<PopulationRequest>) -> Result<Response<PopulationResponse>, Status> {
        let r = request.into_inner();
        let division = validate::division_prefix("division_code", &r.division_code)?;
        if division.code.len() == 12 || division.code.len() == 2 {
            return Err(ServiceError::invalid("division_code", "must be a city (4), county (6) or street (9) code").into());
        }
        let on = validate::optional_date("on", r.on.as_ref())?.unwrap_or_else(input::today);
        let code = division.code.clone();
        let registry = self.registry.clone();
        Ok(Response::new(blocking(move || Ok(registry.population(&code, on)?)).await?))
    }

    async fn changes(&self, request: Request<ChangesRequest>) -> Result<Response<ChangesResponse>, Status> {
        let r = request.into_inner();
        let division = validate::division_prefix("division_code", &r.division_code)?;
        let (from, to) = input::period(r.from.as_ref(), r.to.as_ref())?;
        let code = division.code.clone();
        let registry = self.registry.clone();
        Ok(Response::new(blocking(move || Ok(registry.changes(&code, from, to)?)).await?))
    }
}
