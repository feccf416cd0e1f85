//! What the platform itself holds about an applicant, so a settlement is
//! decided on its records rather than on what the applicant declares:
//!
//! * months of urban employee pension insurance (the pension feed, 人社局);
//! * employment in the city (an active employee-scheme pension or medical
//!   insurance record);
//! * a residence permit valid on the day (the residence service, the only
//!   issuer of the city's permits: no record there means no permit);
//! * the home at the target address: owned (and of which use), rented on a
//!   registered lease, or homestead (the housing feed, 住建局/不动产登记).
//!
//! A fact the platform holds no record of stays `None`, and the evaluation
//! falls back to the declaration, marking the check DECLARED.

use chrono::NaiveDate;
use popbase_common::upstream::Upstream;
use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::common::Address;
use popbase_proto::feeds::feed_record::Payload;
use popbase_proto::feeds::feeds_client::FeedsClient;
use popbase_proto::feeds::{EnrollmentStatus, FeedRecord, HousingKind, MedicalScheme, PensionScheme, PropertyUse, RecordsOfRequest};
use popbase_proto::household::PropertyKind;
use popbase_proto::residence::residence_permits_client::ResidencePermitsClient;
use popbase_proto::residence::{GetResidentRequest, RegistrationState, Resident};
use tonic::Code;

/// The home the housing feed records for the applicant at the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Home {
    /// Housing records exist, none at the target address.
    NoneAtTarget,
    Owned(PropertyKind),
    /// A registered lease, current on the day; whether the owner agreed to
    /// the tenant settling there.
    Rented {
        owner_consents: bool,
    },
    Homestead,
}

/// The platform's records on the facts a policy checks; `None`: it holds none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlatformFacts {
    pub pension_months: Option<u32>,
    pub employed: Option<bool>,
    pub permit: Option<bool>,
    pub home: Option<Home>,
    /// A rural homestead anywhere, not only at the target.
    pub homestead_anywhere: Option<bool>,
    /// The residence registration lies at the target committee.
    pub lives_at_target: Option<bool>,
    /// Per claimed sponsor: a homestead at the target committee.
    pub sponsor_homestead: Vec<(String, Option<bool>)>,
}

/// The roles the facts come from (in the same process or over mTLS).
#[derive(Clone)]
pub struct PlatformSources {
    pub feeds: FeedsClient<Upstream>,
    pub residence: ResidencePermitsClient<Upstream>,
}

impl PlatformSources {
    /// The platform's facts on `id_number`, and on the homesteads of
    /// `sponsors`, as they stood on `on`.
    pub async fn gather(&self, id_number: &str, sponsors: &[String], target: &Address, on: NaiveDate) -> ServiceResult<PlatformFacts> {
        // One round trip's time for all of them: the applicant's records and
        // residence, and each sponsor's records, asked at once.
        let sponsors_records = futures::future::try_join_all(sponsors.iter().map(|sponsor| self.records_of(sponsor, on)));
        let (records, resident, sponsors_records) =
            tokio::try_join!(self.records_of(id_number, on), self.resident(id_number), sponsors_records)?;
        let mut facts = PlatformFacts::from_records(&records, resident.as_ref(), target, on);
        for (sponsor, records) in sponsors.iter().zip(sponsors_records) {
            facts.sponsor_homestead.push((sponsor.clone(), homestead_at(&records, target, on)));
        }
        Ok(facts)
    }

    /// The residence service's record of `id_number`, `None` when it has none.
    async fn resident(&self, id_number: &str) -> ServiceResult<Option<Resident>> {
        let asked = GetResidentRequest {
            id_number: id_number.to_string(),
        };
        match self.residence.clone().get_resident(asked).await {
            Ok(resident) => Ok(Some(resident.into_inner())),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(unavailable("the residence service", status)),
        }
    }

    async fn records_of(&self, id_number: &str, on: NaiveDate) -> ServiceResult<Vec<FeedRecord>> {
        Ok(self
            .feeds
            .clone()
            .records_of(RecordsOfRequest {
                id_number: id_number.to_string(),
                as_of_unix_millis: end_of_day_millis(on),
            })
            .await
            .map_err(|s| unavailable("the feeds service", s))?
            .into_inner()
            .records)
    }
}

/// The housing feed's records among `records`, current on `on`.
fn housing(records: &[FeedRecord], on: NaiveDate) -> Vec<&popbase_proto::feeds::Housing> {
    records
        .iter()
        .filter_map(|r| match &r.payload {
            Some(Payload::Housing(h)) if h.until.and_then(|d| d.to_naive()).is_none_or(|until| on <= until) => Some(h),
            _ => None,
        })
        .collect()
}

fn is_homestead(h: &popbase_proto::feeds::Housing) -> bool {
    h.kind == HousingKind::Ownership as i32 && h.r#use == PropertyUse::RuralHomestead as i32
}

/// A homestead in the target's committee (village); `None`: no housing record.
fn homestead_at(records: &[FeedRecord], target: &Address, on: NaiveDate) -> Option<bool> {
    let held = housing(records, on);
    (!held.is_empty()).then(|| {
        held.iter()
            .any(|h| is_homestead(h) && Address::committee_of(&h.address) == target.committee_code)
    })
}

fn unavailable(what: &str, status: tonic::Status) -> ServiceError {
    ServiceError::Unavailable(format!("{what} could not be asked for the applicant's facts: {}", status.message()))
}

/// The last millisecond of `on` in the city; 0 (now) for today or later.
fn end_of_day_millis(on: NaiveDate) -> i64 {
    if on >= popbase_domain::clock::today() {
        return 0;
    }
    popbase_domain::clock::day_end_millis(on)
}

/// The same committee and the same detail, spaces (full-width too) aside.
fn same_place(a: &Option<Address>, target: &Address) -> bool {
    let letters = |detail: &str| detail.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    a.as_ref()
        .is_some_and(|a| a.committee_code == target.committee_code && letters(&a.detail) == letters(&target.detail))
}

impl PlatformFacts {
    /// The facts `records` (the feeds' records of the person on `on`) and
    /// `resident` (the residence service's, if any) establish.
    pub fn from_records(records: &[FeedRecord], resident: Option<&Resident>, target: &Address, on: NaiveDate) -> PlatformFacts {
        let mut facts = PlatformFacts {
            permit: Some(resident.is_some_and(|r| r.permits.iter().any(|p| p.is_valid_on(on)))),
            ..Default::default()
        };
        facts.lives_at_target = resident
            .and_then(|r| r.registration.as_ref())
            .filter(|r| r.state == RegistrationState::Active as i32)
            .map(|r| Address::committee_of(&r.address) == target.committee_code);
        let active = |status: i32| status == EnrollmentStatus::Active as i32;
        for record in records {
            match &record.payload {
                Some(Payload::Pension(p)) if p.scheme == PensionScheme::EnterpriseEmployee as i32 => {
                    facts.pension_months = Some(facts.pension_months.unwrap_or(0).max(p.contribution_months));
                    facts.employed = Some(facts.employed.unwrap_or(false) || active(p.status));
                }
                Some(Payload::Pension(_)) => facts.employed = Some(facts.employed.unwrap_or(false)),
                Some(Payload::MedicalInsurance(m)) => {
                    let employee = m.scheme == MedicalScheme::Employee as i32 && active(m.status);
                    facts.employed = Some(facts.employed.unwrap_or(false) || employee);
                }
                _ => {}
            }
        }
        let housing = housing(records, on);
        if !housing.is_empty() {
            facts.homestead_anywhere = Some(housing.iter().any(|h| is_homestead(h)));
            let at_target: Vec<_> = housing.iter().filter(|h| same_place(&h.address, target)).collect();
            let owned = at_target.iter().find(|h| h.kind == HousingKind::Ownership as i32);
            let rented = at_target.iter().find(|h| h.kind == HousingKind::RegisteredRental as i32);
            facts.home = Some(match (owned, rented) {
                (Some(h), _) if h.r#use == PropertyUse::RuralHomestead as i32 => Home::Homestead,
                (Some(h), _) if h.r#use == PropertyUse::Apartment as i32 => Home::Owned(PropertyKind::Apartment),
                (Some(_), _) => Home::Owned(PropertyKind::Residence),
                (None, Some(h)) => Home::Rented {
                    owner_consents: h.owner_consents_to_settlement,
                },
                (None, None) => Home::NoneAtTarget,
            });
        }
        facts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use popbase_proto::feeds::{Housing, MedicalInsurance, Pension};
    use popbase_proto::residence::{PermitStatus, ResidencePermit};

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    fn record(payload: Payload) -> FeedRecord {
        FeedRecord {
            payload: Some(payload),
            ..Default::default()
        }
    }

    fn target() -> Address {
        Address {
            committee_code: "370102001001".into(),
            detail: "经十路1号 1单元101".into(),
        }
    }

    #[test]
    fn nothing_held_is_none_except_the_permit_the_platform_alone_issues() {
        let facts = PlatformFacts::from_records(&[], None, &target(), day(2026, 1, 1));
        assert_eq!(
            facts,
            PlatformFacts {
                permit: Some(false),
                ..Default::default()
            }
        );
    }

    #[test]
    fn pension_employment_permit_and_home_come_from_the_records() {
        let on = day(2026, 1, 1);
        let records = [
            record(Payload::Pension(Pension {
                scheme: PensionScheme::EnterpriseEmployee as i32,
                status: EnrollmentStatus::Active as i32,
                contribution_months: 26,
                ..Default::default()
            })),
            record(Payload::MedicalInsurance(MedicalInsurance {
                scheme: MedicalScheme::UrbanRuralResident as i32,
                status: EnrollmentStatus::Active as i32,
                ..Default::default()
            })),
            record(Payload::Housing(Housing {
                kind: HousingKind::Ownership as i32,
                r#use: PropertyUse::Apartment as i32,
                address: Some(Address {
                    detail: "经十路1号  1单元101".into(),
                    ..target()
                }),
                ..Default::default()
            })),
        ];
        let resident = Resident {
            permits: vec![ResidencePermit {
                status: PermitStatus::Valid as i32,
                valid_until: Some(day(2025, 12, 31).into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let facts = PlatformFacts::from_records(&records, Some(&resident), &target(), on);
        assert_eq!(facts.pension_months, Some(26));
        assert_eq!(facts.employed, Some(true));
        assert_eq!(facts.permit, Some(false), "lapsed the day before");
        assert_eq!(facts.home, Some(Home::Owned(PropertyKind::Apartment)));
        let elsewhere = Address {
            detail: "经十路2号".into(),
            ..target()
        };
        let facts = PlatformFacts::from_records(&records[1..], None, &elsewhere, on);
        assert_eq!(
            (facts.pension_months, facts.employed, facts.home),
            (None, Some(false), Some(Home::NoneAtTarget)),
            "resident-scheme insurance only: held, not employed"
        );
    }
}
