//! A person's standing in the city: registered here, living here on a
//! permit, registered as a resident only, or unknown, looked up in one
//! registry batch plus one residence call per non-registered person.

use chrono::NaiveDate;
use popbase_common::ServiceResult;
use popbase_proto::household::{GetPersonsRequest, Person, PersonView, RegistrationStatus};
use popbase_proto::residence::{GetResidentRequest, PermitStatus, RegistrationState, ResidencePermit, ResidenceRegistration};
use tonic::Code;

use crate::sources::{Sources, upstream};

#[derive(Debug, Clone)]
pub enum Standing {
    /// Active household registration (本市户籍).
    Registered(Person),
    /// Living here with a permit valid on the day asked.
    Permit(ResidenceRegistration, ResidencePermit),
    /// Residence registration (居住登记) without a valid permit, and the
    /// permit that lapsed, if one did (past `valid_until` or not endorsed).
    ResidenceOnly(ResidenceRegistration, Option<ResidencePermit>),
    /// Once registered here, now moved out or deceased.
    Former(Person),
    Unknown,
}

impl Standing {
    /// The registry record, whatever its status.
    pub fn person(&self) -> Option<&Person> {
        match self {
            Standing::Registered(p) | Standing::Former(p) => Some(p),
            _ => None,
        }
    }

    pub fn registration(&self) -> Option<&ResidenceRegistration> {
        match self {
            Standing::Permit(r, _) | Standing::ResidenceOnly(r, _) => Some(r),
            _ => None,
        }
    }

    /// Committee of the registration or of the residence.
    pub fn committee(&self) -> Option<&str> {
        let address = match self {
            Standing::Registered(p) => p.address.as_ref(),
            Standing::Permit(_, permit) => permit.address.as_ref(),
            Standing::ResidenceOnly(r, _) => r.address.as_ref(),
            _ => None,
        }?;
        Some(address.committee_code.as_str())
    }
}

fn valid_permit(permits: &[ResidencePermit], on: NaiveDate) -> Option<&ResidencePermit> {
    permits.iter().find(|p| p.is_valid_on(on))
}

/// The latest permit that lapsed by `on`: marked expired, or still marked
/// valid with `valid_until` past (the residence role's daily expiry has not
/// run yet). Cancelled permits and those ended by settlement did not lapse.
fn lapsed_permit(permits: &[ResidencePermit], on: NaiveDate) -> Option<&ResidencePermit> {
    permits
        .iter()
        .filter(|p| p.status == PermitStatus::Expired as i32 || p.is_lapsed_on(on))
        .max_by_key(|p| p.valid_until_day())
}

/// The standing of each of `ids`, in order, with each registry record read
/// in `view`: `PersonView::Standing` when only the standing itself, its
/// committee and the kinship links are needed.
pub async fn standings(sources: &Sources, ids: &[String], on: NaiveDate, view: PersonView) -> ServiceResult<Vec<Standing>> {
    standings_as_of(sources, ids, on, view, None).await
}

/// [`standings`] with the registry's records as of the end of `as_of`
/// (its change log) instead of now.
pub async fn standings_as_of(
    sources: &Sources,
    ids: &[String],
    on: NaiveDate,
    view: PersonView,
    as_of: Option<NaiveDate>,
) -> ServiceResult<Vec<Standing>> {
    let request = GetPersonsRequest {
        id_numbers: ids.to_vec(),
        view: view as i32,
        as_of: as_of.map(Into::into),
    };
    let persons = sources
        .registry
        .get_persons(request)
        .await
        .map_err(|s| upstream("the household registry", s))?
        .into_inner()
        .persons;
    let mut out = Vec::with_capacity(ids.len());
    for (id, person) in ids.iter().zip(persons) {
        if person.status == RegistrationStatus::Active as i32 {
            out.push(Standing::Registered(person));
            continue;
        }
        let resident = match sources.permits.get_resident(GetResidentRequest { id_number: id.clone() }).await {
            Ok(r) => Some(r.into_inner()),
            Err(s) if s.code() == Code::NotFound => None,
            Err(s) => return Err(upstream("the residence service", s)),
        };
        let living = resident.and_then(|r| {
            r.registration
                .clone()
                .filter(|g| g.state == RegistrationState::Active as i32)
                .map(|g| (g, r.permits))
        });
        out.push(match living {
            Some((registration, permits)) => match valid_permit(&permits, on) {
                Some(permit) => Standing::Permit(registration, permit.clone()),
                None => {
                    let lapsed = lapsed_permit(&permits, on).cloned();
                    Standing::ResidenceOnly(registration, lapsed)
                }
            },
            None if !person.id_number.is_empty() => Standing::Former(person),
            None => Standing::Unknown,
        });
    }
    Ok(out)
}
