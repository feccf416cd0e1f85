//! SharingCatalogue: the catalogue itself, read, checked and applied
//! through the gate like any answer. Applying stores the version in the
//! ledger (compare-and-set on the version), adopts it on this replica at
//! once, and every other replica within [`crate::live_catalogue::FOLLOW_INTERVAL`].

use std::sync::Arc;

use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::gateway::sharing_catalogue_server::{SharingCatalogue, SharingCatalogueServer};
use popbase_proto::gateway::{
    ApplyCatalogueRequest, CatalogueApproval, CatalogueDepartment, CatalogueDocument, CatalogueInterface, CatalogueValidation,
    GetCatalogueRequest, ValidateCatalogueRequest,
};
use tonic::{Request, Response, Status};

use super::{Fetched, admit, answer, respond, whole_answer};
use crate::catalogue::{Catalogue, MAX_TEXT_BYTES, ShareClass, interface};
use crate::gate::Gate;
use crate::live_catalogue::Applied;

whole_answer!(CatalogueDocument, "catalogue");
whole_answer!(CatalogueValidation, "catalogue");

#[derive(Clone)]
pub struct CatalogueService {
    gate: Arc<Gate>,
}

impl CatalogueService {
    pub fn new(gate: Arc<Gate>) -> Self {
        Self { gate }
    }

    pub fn server(&self) -> SharingCatalogueServer<Self> {
        SharingCatalogueServer::new(self.clone())
    }
}

fn share_class(class: ShareClass) -> &'static str {
    match class {
        ShareClass::Unconditional => "unconditional",
        ShareClass::Conditional => "conditional",
        ShareClass::NotShared => "not_shared",
    }
}

/// The applied catalogue as a document: its text and its entries, sorted.
fn document(applied: &Applied) -> CatalogueDocument {
    let c = &applied.catalogue;
    let mut departments: Vec<CatalogueDepartment> = c
        .departments()
        .map(|d| CatalogueDepartment {
            id: d.id.clone(),
            name: d.name.clone(),
            daily_quota: d.daily_quota,
            per_second: d.per_second,
        })
        .collect();
    departments.sort_by(|a, b| a.id.cmp(&b.id));
    let mut interfaces: Vec<CatalogueInterface> = c
        .interfaces()
        .map(|i| CatalogueInterface {
            id: i.id.clone(),
            name: i.name.clone(),
            share_class: share_class(i.share_class).into(),
            legal_basis: i.legal_basis.clone(),
            fields: i.fields.clone(),
        })
        .collect();
    interfaces.sort_by(|a, b| a.id.cmp(&b.id));
    let mut approvals: Vec<CatalogueApproval> = c
        .approvals()
        .map(|a| CatalogueApproval {
            department: a.department.clone(),
            interface: a.interface.clone(),
            purposes: a.purposes.clone(),
            fields: a.fields.iter().cloned().collect(),
        })
        .collect();
    approvals.sort_by(|a, b| (&a.department, &a.interface).cmp(&(&b.department, &b.interface)));
    CatalogueDocument {
        version: applied.version,
        toml: applied.toml.to_string(),
        applied_at_unix_millis: applied.applied_at_unix_millis,
        applied_by: applied.applied_by.clone(),
        departments,
        interfaces,
        approvals,
    }
}

/// Whether `text` may replace `current`: the checks of loading a catalogue,
/// and two of replacing one live: the city stays, and some department may
/// still change the catalogue (else no one could through the gateway again).
pub fn check_replacement(current: &Catalogue, text: &str) -> Result<Catalogue, String> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(format!("the catalogue is larger than {MAX_TEXT_BYTES} bytes"));
    }
    let next = Catalogue::parse(text, "the edited catalogue").map_err(|e| e.without_caller_text())?;
    if next.city != current.city {
        return Err(format!("city must stay {} (a gateway serves one city)", current.city));
    }
    if !next.approvals().any(|a| a.interface == interface::CATALOGUE_CHANGE) {
        return Err(format!(
            "no department would be approved for {} any more: the catalogue could not be changed again",
            interface::CATALOGUE_CHANGE
        ));
    }
    Ok(next)
}

#[tonic::async_trait]
impl SharingCatalogue for CatalogueService {
    async fn get_catalogue(&self, request: Request<GetCatalogueRequest>) -> Result<Response<CatalogueDocument>, Status> {
        let gate = self.gate.clone();
        respond(
            answer(
                &self.gate,
                request,
                interface::SHARING_CATALOGUE,
                |r| &r.purpose,
                |_| Ok(((), Vec::new())),
                |()| async move { Ok(Fetched::one(document(&gate.live_catalogue.applied()))) },
            )
            .await,
        )
    }

    async fn validate_catalogue(&self, request: Request<ValidateCatalogueRequest>) -> Result<Response<CatalogueValidation>, Status> {
        let gate = self.gate.clone();
        respond(
            answer(
                &self.gate,
                request,
                interface::SHARING_CATALOGUE,
                |r| &r.purpose,
                |r| Ok((r.toml.clone(), Vec::new())),
                |text| async move {
                    let validation = match check_replacement(&gate.catalogue(), &text) {
                        Ok(_) => CatalogueValidation {
                            valid: true,
                            problem: String::new(),
                        },
                        Err(problem) => CatalogueValidation { valid: false, problem },
                    };
                    Ok(Fetched::one(validation))
                },
            )
            .await,
        )
    }

    async fn apply_catalogue(&self, request: Request<ApplyCatalogueRequest>) -> Result<Response<CatalogueDocument>, Status> {
        let gate = &self.gate;
        let (caller, (text, expected), admission) = admit(
            gate,
            &request,
            interface::CATALOGUE_CHANGE,
            |r| &r.purpose,
            |_| &[],
            |r| {
                check_replacement(&gate.catalogue(), &r.toml).map_err(|problem| ServiceError::invalid("toml", problem))?;
                Ok(((r.toml.clone(), r.expected_version), Vec::new()))
            },
        )
        .await?;
        let applied: ServiceResult<CatalogueDocument> = async {
            let stored = gate.ledger.put_catalogue(expected, text, caller.department.clone()).await?;
            gate.live_catalogue
                .adopt(&stored)
                .map_err(|e| ServiceError::Internal(format!("the applied catalogue does not load: {e}")))?;
            tracing::info!(version = stored.version, department = %caller.department, "sharing catalogue applied");
            Ok(document(&gate.live_catalogue.applied()))
        }
        .await;
        respond(match applied {
            Ok(document) => gate.release(admission, document, &[], 1).await,
            Err(e) => Err(gate.fail(&admission, e).await),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::SHIPPED;

    #[test]
    fn a_replacement_must_load_keep_the_city_and_keep_someone_able_to_change_it() {
        let current = Catalogue::shipped().expect("shipped");
        assert!(check_replacement(&current, SHIPPED).is_ok());
        assert!(check_replacement(&current, "city = [").is_err_and(|e| e.contains("edited catalogue")));
        let other_city = SHIPPED.replacen("city = \"3703\"", "city = \"3701\"", 1);
        assert!(check_replacement(&current, &other_city).is_err_and(|e| e.contains("city must stay 3703")));
        let locked_out = SHIPPED.replace("interface = \"CatalogueChange\"", "interface = \"SharingCatalogue\"");
        assert!(check_replacement(&current, &locked_out).is_err());
        let unknown =
            format!("{SHIPPED}\n[[approval]]\ndepartment = \"nobody\"\ninterface = \"PersonSummary\"\npurposes = [\"X\"]\nfields = []\n");
        assert!(check_replacement(&current, &unknown).is_err_and(|e| e.contains("unknown department '…'") && !e.contains("nobody")));
    }
}
