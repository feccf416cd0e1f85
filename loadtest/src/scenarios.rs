//! The scenarios, each a department's real call through the gateway:
//!
//! * `person`: `Persons.PersonSummary` (unary; consent checked, three
//!   services asked, audited durably) as human resources;
//! * `intake`: `Enrollment.CheckIntake` (bidirectional stream of `batch`
//!   children) as the education bureau; items = children checked;
//! * `uninsured`: `MedicalInsurance.InsuranceGap` (server stream) for one
//!   street as the medical-insurance bureau; items = residents listed;
//! * `export`: Flight `DoGet` of the persons dataset, decoded by the client,
//!   as the big-data bureau; items = rows.

use std::sync::Arc;

use arrow_flight::{FlightClient, Ticket as FlightTicket};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use popbase_proto::popbase::gateway::v1::enrollment_client::EnrollmentClient;
use popbase_proto::popbase::gateway::v1::medical_insurance_client::MedicalInsuranceClient;
use popbase_proto::popbase::gateway::v1::persons_client::PersonsClient;
use popbase_proto::popbase::gateway::v1::{EnrollmentCheckRequest, InsuranceGapRequest, PersonSummaryRequest};
use tonic::Request;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use crate::engine::Scenario;
use crate::setup::Family;

/// Channels to the gateway and the department's token.
#[derive(Clone)]
pub struct Gateway {
    pub channels: Vec<Channel>,
    pub token: String,
}

impl Gateway {
    pub(crate) fn channel(&self, n: u64) -> Channel {
        self.channels[(n % self.channels.len() as u64) as usize].clone()
    }

    pub(crate) fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        if let Ok(value) = MetadataValue::try_from(format!("Bearer {}", self.token)) {
            request.metadata_mut().insert("authorization", value);
        }
        request
    }
}

pub(crate) fn status(e: tonic::Status) -> String {
    format!("{:?}: {}", e.code(), e.message())
}

pub struct Person {
    pub gateway: Gateway,
    pub ids: Arc<Vec<String>>,
}

impl Scenario for Person {
    fn name(&self) -> &'static str {
        "person"
    }

    fn call(&self, n: u64) -> BoxFuture<'static, Result<u64, String>> {
        let id = self.ids[(n % self.ids.len() as u64) as usize].clone();
        let mut client = PersonsClient::new(self.gateway.channel(n));
        let request = self.gateway.request(PersonSummaryRequest {
            purpose: "EMPLOYMENT_SERVICE".into(),
            id_number: id,
            as_of: None,
        });
        Box::pin(async move { client.person_summary(request).await.map(|_| 1).map_err(status) })
    }
}

pub struct Intake {
    pub gateway: Gateway,
    pub families: Arc<Vec<Family>>,
    pub batch: usize,
}

impl Scenario for Intake {
    fn name(&self) -> &'static str {
        "intake"
    }

    fn call(&self, n: u64) -> BoxFuture<'static, Result<u64, String>> {
        let families = self.families.clone();
        let batch = self.batch;
        let first = (n as usize).wrapping_mul(batch);
        let applications = (0..batch).map(move |i| {
            let f = &families[(first + i) % families.len()];
            EnrollmentCheckRequest {
                purpose: "COMPULSORY_EDUCATION_ENROLLMENT".into(),
                request_id: format!("lt-{i}"),
                child_id_number: f.child.clone(),
                guardian_id_numbers: vec![f.guardian.clone()],
                district_codes: vec![f.committee.clone()],
                reference_date: None,
            }
        });
        let mut client = EnrollmentClient::new(self.gateway.channel(n));
        let request = self.gateway.request(futures::stream::iter(applications));
        Box::pin(async move {
            let answers = client.check_intake(request).await.map_err(status)?.into_inner();
            let mut checked = 0u64;
            let mut answers = answers;
            while let Some(answer) = answers.next().await {
                answer.map_err(status)?;
                checked += 1;
            }
            Ok(checked)
        })
    }
}

pub struct Uninsured {
    pub gateway: Gateway,
    pub divisions: Arc<Vec<String>>,
}

impl Scenario for Uninsured {
    fn name(&self) -> &'static str {
        "uninsured"
    }

    fn call(&self, n: u64) -> BoxFuture<'static, Result<u64, String>> {
        let division = self.divisions[(n % self.divisions.len() as u64) as usize].clone();
        let mut client = MedicalInsuranceClient::new(self.gateway.channel(n));
        let request = self.gateway.request(InsuranceGapRequest {
            purpose: "RESIDENT_INSURANCE_ENROLLMENT_DRIVE".into(),
            division_code: division,
        });
        Box::pin(async move {
            let listed = client.insurance_gap(request).await.map_err(status)?.into_inner();
            let rows: Vec<_> = listed.try_collect().await.map_err(status)?;
            Ok(rows.len() as u64)
        })
    }
}

pub struct Export {
    pub gateway: Gateway,
    pub dataset: String,
}

impl Scenario for Export {
    fn name(&self) -> &'static str {
        "export"
    }

    fn call(&self, n: u64) -> BoxFuture<'static, Result<u64, String>> {
        let mut client = FlightClient::new(self.gateway.channel(n));
        let token = self.gateway.token.clone();
        let ticket = format!(r#"{{"dataset":"{}","purpose":"POPULATION_ANALYSIS"}}"#, self.dataset);
        Box::pin(async move {
            client
                .add_header("authorization", &format!("Bearer {token}"))
                .map_err(|e| e.to_string())?;
            let mut batches = client.do_get(FlightTicket::new(ticket)).await.map_err(|e| e.to_string())?;
            let mut rows = 0u64;
            while let Some(batch) = batches.try_next().await.map_err(|e| e.to_string())? {
                rows += batch.num_rows() as u64;
            }
            Ok(rows)
        })
    }
}
