//! What a residence permit and the department feeds entitle a resident to,
//! each answer with its basis, and 政策找人 (residents who qualify for a
//! policy and have not used it).
//!
//! The rules are pure functions of one resident's facts; the gRPC service
//! gathers the facts from this store and the feeds service.

use std::pin::Pin;

use chrono::{Datelike, NaiveDate};
use futures::StreamExt as _;
use popbase_common::upstream::{self, Upstream};
use popbase_common::{ServiceError, validate};
use popbase_domain::IdNumber;
use popbase_domain::calendar::age_on;
use popbase_proto::feeds::feed_record::Payload;
use popbase_proto::feeds::feeds_client::FeedsClient;
use popbase_proto::feeds::{EnrollmentStatus, FeedRecord, MedicalScheme, RecordsOfRequest, StudentState};
use popbase_proto::residence::entitlements_server::{Entitlements, EntitlementsServer};
use popbase_proto::residence::{
    Entitlement, FindUnusedRequest, GetEntitlementsRequest, GetEntitlementsResponse, PermitStatus, Policy, RegistrationState,
    ResidencePermit, ResidenceRegistration,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::Permits;
use crate::batched::Batched;

/// Compulsory education: ages 6 to 15 inclusive.
pub const SCHOOL_AGES: std::ops::RangeInclusive<u32> = 6..=15;
/// Temporary assistance: months of social insurance in the city.
pub const ASSISTANCE_INSURANCE_MONTHS: u32 = 12;

/// One resident's facts.
pub struct Facts<'a> {
    pub registration: &'a ResidenceRegistration,
    pub permits: &'a [ResidencePermit],
    /// Permits of the person accompanied (随迁), if any.
    pub accompanied_permits: &'a [ResidencePermit],
    pub feeds: &'a [FeedRecord],
}

/// The first of `permits` valid on `on`: marked valid, issued by then and not
/// yet ended.
pub(crate) fn valid_on(permits: &[ResidencePermit], on: NaiveDate) -> Option<&ResidencePermit> {
    permits.iter().find(|p| {
        let issued = p.issued_on.and_then(|d| d.to_naive()).is_some_and(|d| d <= on);
        let until = p.valid_until.and_then(|d| d.to_naive()).is_some_and(|d| d >= on);
        p.status == PermitStatus::Valid as i32 && issued && until
    })
}

fn describe(permit: &ResidencePermit, whose: &str) -> String {
    let until = permit
        .valid_until
        .and_then(|d| d.to_naive())
        .map(|d| d.to_string())
        .unwrap_or_default();
    format!("{whose} permit {} valid until {until}", permit.permit_number)
}

/// Months of social insurance the feeds show on `on`: pension contributions,
/// or months since an active employee medical insurance began.
fn insured_months(feeds: &[FeedRecord], on: NaiveDate) -> u32 {
    feeds
        .iter()
        .filter_map(|r| match &r.payload {
            Some(Payload::Pension(p)) if p.status == EnrollmentStatus::Active as i32 => Some(p.contribution_months),
            Some(Payload::MedicalInsurance(m))
                if m.status == EnrollmentStatus::Active as i32 && m.scheme == MedicalScheme::Employee as i32 =>
            {
                m.since.and_then(|d| d.to_naive()).filter(|s| *s <= on).map(|since| {
                    let months = (on.year_ce().1 as i64 - since.year_ce().1 as i64) * 12 + on.month0() as i64 - since.month0() as i64;
                    u32::try_from(months.max(0)).unwrap_or(0)
                })
            }
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// Every policy for one resident on `on`.
pub fn evaluate(on: NaiveDate, facts: &Facts<'_>) -> Vec<Entitlement> {
    let id = &facts.registration.id_number;
    let active = facts.registration.state == RegistrationState::Active as i32;
    let age = IdNumber::parse(id, on).map(|n| age_on(n.birth_date(), on)).ok();
    let own = valid_on(facts.permits, on);
    let accompanied = valid_on(facts.accompanied_permits, on);
    let mut base = Vec::new();
    if !active {
        base.push("residence registration not active".to_string());
    }
    let entitlement = |policy: Policy, qualifies: bool, used: Option<bool>, basis: Vec<String>| Entitlement {
        id_number: id.clone(),
        policy: policy as i32,
        qualifies,
        used: used.unwrap_or(false),
        used_known: used.is_some(),
        basis,
    };

    let mut education = base.clone();
    let school_age = age.is_some_and(|a| SCHOOL_AGES.contains(&a));
    education.push(format!(
        "age {} (compulsory education {}-{})",
        age.map_or("?".into(), |a| a.to_string()),
        SCHOOL_AGES.start(),
        SCHOOL_AGES.end()
    ));
    let permit = match (own, accompanied) {
        (Some(p), _) => Some(describe(p, "own")),
        (None, Some(p)) => Some(describe(p, "accompanied parent's")),
        (None, None) => None,
    };
    education.push(
        permit
            .clone()
            .unwrap_or_else(|| "no valid permit of the child or the parent accompanied".into()),
    );
    let enrolled = facts
        .feeds
        .iter()
        .any(|r| matches!(&r.payload, Some(Payload::Student(s)) if s.state == StudentState::Enrolled as i32));
    let education = entitlement(
        Policy::CompulsoryEducation,
        active && school_age && permit.is_some(),
        Some(enrolled),
        education,
    );

    let insured = facts
        .feeds
        .iter()
        .any(|r| matches!(&r.payload, Some(Payload::MedicalInsurance(m)) if m.status == EnrollmentStatus::Active as i32));
    let medical = resident_medical_insurance(facts.registration, facts.permits, on, insured);

    let months = insured_months(facts.feeds, on);
    let mut assistance = base;
    assistance.push(own.map_or_else(|| "no valid permit".into(), |p| describe(p, "own")));
    assistance.push(format!(
        "{months} months of social insurance, at least {ASSISTANCE_INSURANCE_MONTHS}"
    ));
    let assistance = entitlement(
        Policy::TemporaryAssistance,
        active && own.is_some() && months >= ASSISTANCE_INSURANCE_MONTHS,
        None,
        assistance,
    );
    vec![education, medical, assistance]
}

/// 居民医保 for one resident on `on`: qualifies with an active registration
/// and a permit of their own valid that day; used when `insured` (an active
/// medical-insurance record). The one place this rule is written.
pub fn resident_medical_insurance(
    registration: &ResidenceRegistration,
    permits: &[ResidencePermit],
    on: NaiveDate,
    insured: bool,
) -> Entitlement {
    let active = registration.state == RegistrationState::Active as i32;
    let own = valid_on(permits, on);
    let mut basis = Vec::new();
    if !active {
        basis.push("residence registration not active".to_string());
    }
    basis.push(own.map_or_else(|| "no valid permit".into(), |p| describe(p, "own")));
    Entitlement {
        id_number: registration.id_number.clone(),
        policy: Policy::ResidentMedicalInsurance as i32,
        qualifies: active && own.is_some(),
        used: insured,
        used_known: true,
        basis,
    }
}

/// A lazy client of the feeds service.
pub fn feeds_client(address: &str, dialer: &upstream::Dialer) -> Result<FeedsClient<Upstream>, String> {
    Ok(FeedsClient::new(upstream::remote("feeds", address, dialer)?))
}

pub struct EntitlementsService {
    permits: Permits,
    feeds: FeedsClient<Upstream>,
}

impl EntitlementsService {
    pub fn new(permits: Permits, feeds: FeedsClient<Upstream>) -> Self {
        Self { permits, feeds }
    }

    pub fn into_server(self) -> EntitlementsServer<Self> {
        EntitlementsServer::new(self)
    }
}

/// One resident's entitlements, gathering the facts.
async fn entitlements_of(
    permits: &Permits,
    feeds: &mut FeedsClient<Upstream>,
    registration: &ResidenceRegistration,
    on: NaiveDate,
) -> Result<Vec<Entitlement>, Status> {
    let (own, accompanied) = permits_around(permits, registration)?;
    let records = records_on(feeds, &registration.id_number, on).await?;
    Ok(evaluate(
        on,
        &Facts {
            registration,
            permits: &own,
            accompanied_permits: &accompanied,
            feeds: &records,
        },
    ))
}

/// 政策找人 for one resident: their `policy` entitlement when they qualify
/// and have not used it. Whether a resident qualifies for the policies
/// `FindUnused` serves (education, resident insurance) rests on their
/// registration and permits alone, so the feeds are asked only about those
/// who do: a city's 564,000 registrations came to 564,000 `RecordsOf`
/// calls before, for 1,859 children found.
async fn unused_of(
    permits: &Permits,
    feeds: &mut FeedsClient<Upstream>,
    registration: &ResidenceRegistration,
    on: NaiveDate,
    policy: Policy,
) -> Result<Option<Entitlement>, Status> {
    let (own, accompanied) = permits_around(permits, registration)?;
    let facts = |records| Facts {
        registration,
        permits: &own,
        accompanied_permits: &accompanied,
        feeds: records,
    };
    let of_policy = |all: Vec<Entitlement>| all.into_iter().find(|e| e.policy == policy as i32 && e.qualifies);
    if of_policy(evaluate(on, &facts(&[]))).is_none() {
        return Ok(None);
    }
    let records = records_on(feeds, &registration.id_number, on).await?;
    Ok(of_policy(evaluate(on, &facts(&records))).filter(|e| e.used_known && !e.used))
}

/// A resident's own permits and those of the person they accompany.
pub(crate) fn permits_around(
    permits: &Permits,
    registration: &ResidenceRegistration,
) -> Result<(Vec<ResidencePermit>, Vec<ResidencePermit>), ServiceError> {
    let own = permits.permits_of(&registration.id_number)?;
    let accompanied = match registration.accompanies_id_number.as_str() {
        "" => Vec::new(),
        parent => permits.permits_of(parent)?,
    };
    Ok((own, accompanied))
}

/// A person's feed records as they stood at the end of `on`.
async fn records_on(feeds: &mut FeedsClient<Upstream>, id_number: &str, on: NaiveDate) -> Result<Vec<FeedRecord>, Status> {
    let end_of_day = on.and_hms_opt(23, 59, 59).map_or(i64::MAX, |t| t.and_utc().timestamp_millis());
    let request = RecordsOfRequest {
        id_number: id_number.to_string(),
        as_of_unix_millis: end_of_day,
    };
    let answer = feeds
        .records_of(request)
        .await
        .map_err(|e| ServiceError::Unavailable(format!("feeds service: {}", e.message())))?;
    Ok(answer.into_inner().records)
}

fn on_date(value: Option<&popbase_proto::common::Date>) -> Result<NaiveDate, ServiceError> {
    Ok(validate::optional_date("on", value)?.unwrap_or_else(popbase_domain::clock::today))
}

/// Registrations whose feed records FindUnused asks for at once.
const FEED_LOOKUPS: usize = 32;

type EntitlementStream = Pin<Box<dyn Stream<Item = Result<Entitlement, Status>> + Send>>;

#[tonic::async_trait]
impl Entitlements for EntitlementsService {
    async fn get_entitlements(&self, request: Request<GetEntitlementsRequest>) -> Result<Response<GetEntitlementsResponse>, Status> {
        let r = request.into_inner();
        let id = validate::id_number("id_number", &r.id_number, popbase_domain::clock::today())?;
        let on = on_date(r.on.as_ref())?;
        let registration = self
            .permits
            .registration(id.as_str())
            .map_err(ServiceError::from)?
            .ok_or_else(|| ServiceError::not_found(format!("resident {}", id.masked())))?;
        let entitlements = entitlements_of(&self.permits, &mut self.feeds.clone(), &registration, on).await?;
        Ok(Response::new(GetEntitlementsResponse { entitlements }))
    }

    type FindUnusedStream = EntitlementStream;

    async fn find_unused(&self, request: Request<FindUnusedRequest>) -> Result<Response<Self::FindUnusedStream>, Status> {
        let r = request.into_inner();
        let policy = validate::enumeration::<Policy>("policy", r.policy)?;
        if policy == Policy::TemporaryAssistance {
            return Err(ServiceError::precondition("policy", "no department feeds the use of temporary assistance").into());
        }
        let division = validate::division_prefix("division_code", &r.division_code)?.code.clone();
        let on = on_date(r.on.as_ref())?;
        let (permits, feeds) = (self.permits.clone(), self.feeds.clone());
        let (sender, receiver) = tokio::sync::mpsc::channel(256);
        if let Some(batched) = Batched::for_request(policy, &division, on) {
            tokio::spawn(crate::batched::send_unused(permits, feeds, batched, division, on, sender));
            return Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))));
        }
        tokio::spawn(async move {
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = match permits.registrations_under(&division, after.as_deref(), 500) {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = sender.send(Err(ServiceError::from(e).into())).await;
                        return;
                    }
                };
                let (registrations, last) = page;
                // The page's feed look-ups run FEED_LOOKUPS at a time, answered in page order.
                let mut assessed = futures::stream::iter(registrations)
                    .map(|registration| {
                        let (permits, mut feeds) = (permits.clone(), feeds.clone());
                        async move { unused_of(&permits, &mut feeds, &registration, on, policy).await }
                    })
                    .buffered(FEED_LOOKUPS);
                while let Some(assessment) = assessed.next().await {
                    let sent = match assessment {
                        Ok(Some(unused)) => sender.send(Ok(unused)).await,
                        Ok(None) => Ok(()),
                        Err(status) => {
                            let _ = sender.send(Err(status)).await;
                            return;
                        }
                    };
                    if sent.is_err() {
                        return;
                    }
                }
                match last {
                    Some(last) => after = Some(last),
                    None => return,
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(receiver))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use popbase_proto::common::Date;
    use popbase_proto::feeds::{MedicalInsurance, Pension, PensionScheme, StudentStatus};

    const ON: (i32, u32, u32) = (2026, 9, 1);

    fn on() -> NaiveDate {
        NaiveDate::from_ymd_opt(ON.0, ON.1, ON.2).expect("date")
    }

    fn date(d: NaiveDate) -> Option<Date> {
        Some(d.into())
    }

    /// A resident `age` years old on [`on`] (birthday a month before).
    fn resident(age: i32) -> ResidenceRegistration {
        let birth = NaiveDate::from_ymd_opt(ON.0 - age, ON.1 - 1, 1).expect("birth");
        let id = IdNumber::generate("110105", birth, 11).expect("id");
        ResidenceRegistration {
            id_number: id.as_str().into(),
            state: RegistrationState::Active as i32,
            ..Default::default()
        }
    }

    fn permit(valid_until: NaiveDate) -> ResidencePermit {
        ResidencePermit {
            permit_number: "3703202490000001".into(),
            issued_on: date(NaiveDate::from_ymd_opt(2024, 1, 1).expect("date")),
            valid_until: date(valid_until),
            status: PermitStatus::Valid as i32,
            ..Default::default()
        }
    }

    fn pension(months: u32) -> FeedRecord {
        FeedRecord {
            payload: Some(Payload::Pension(Pension {
                scheme: PensionScheme::EnterpriseEmployee as i32,
                status: EnrollmentStatus::Active as i32,
                contribution_months: months,
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn check(
        registration: &ResidenceRegistration,
        own: &[ResidencePermit],
        parent: &[ResidencePermit],
        feeds: &[FeedRecord],
        policy: Policy,
    ) -> Entitlement {
        evaluate(
            on(),
            &Facts {
                registration,
                permits: own,
                accompanied_permits: parent,
                feeds,
            },
        )
        .into_iter()
        .find(|e| e.policy == policy as i32)
        .expect("policy answered")
    }

    #[test]
    fn compulsory_education_from_6_to_15_on_the_parents_permit() {
        let parent = [permit(on())];
        for (age, expected) in [(5, false), (6, true), (15, true), (16, false)] {
            let child = resident(age);
            let answer = check(&child, &[], &parent, &[], Policy::CompulsoryEducation);
            assert_eq!(answer.qualifies, expected, "age {age}: {:?}", answer.basis);
        }
        let child = resident(8);
        let expired = [permit(on() - chrono::Duration::days(1))];
        assert!(
            !check(&child, &[], &expired, &[], Policy::CompulsoryEducation).qualifies,
            "the parent's permit ended yesterday"
        );
        let enrolled = FeedRecord {
            payload: Some(Payload::Student(StudentStatus {
                state: StudentState::Enrolled as i32,
                ..Default::default()
            })),
            ..Default::default()
        };
        let answer = check(&child, &[], &parent, &[enrolled], Policy::CompulsoryEducation);
        assert!(answer.qualifies && answer.used && answer.used_known);
        assert!(
            answer.basis.iter().any(|b| b.contains("accompanied parent's permit")),
            "{:?}",
            answer.basis
        );
    }

    #[test]
    fn resident_medical_insurance_needs_a_valid_permit() {
        let adult = resident(30);
        assert!(check(&adult, &[permit(on())], &[], &[], Policy::ResidentMedicalInsurance).qualifies);
        assert!(!check(&adult, &[], &[], &[], Policy::ResidentMedicalInsurance).qualifies);
        let mut left = adult.clone();
        left.state = RegistrationState::Left as i32;
        assert!(!check(&left, &[permit(on())], &[], &[], Policy::ResidentMedicalInsurance).qualifies);
        let insured = FeedRecord {
            payload: Some(Payload::MedicalInsurance(MedicalInsurance {
                status: EnrollmentStatus::Active as i32,
                scheme: MedicalScheme::UrbanRuralResident as i32,
                ..Default::default()
            })),
            ..Default::default()
        };
        assert!(check(&adult, &[permit(on())], &[], &[insured], Policy::ResidentMedicalInsurance).used);
    }

    #[test]
    fn temporary_assistance_after_twelve_months_of_insurance() {
        let adult = resident(30);
        let valid = [permit(on())];
        assert!(!check(&adult, &valid, &[], &[pension(11)], Policy::TemporaryAssistance).qualifies);
        let answer = check(&adult, &valid, &[], &[pension(12)], Policy::TemporaryAssistance);
        assert!(answer.qualifies && !answer.used_known, "no feed reports its use");
        assert!(
            !check(&adult, &[], &[], &[pension(24)], Policy::TemporaryAssistance).qualifies,
            "no permit"
        );
    }
}
