//! PersonSummary: one person's standing and basic facts, minimised to the
//! department's approved fields.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use popbase_common::{ServiceResult, validate};
use popbase_domain::mask::mask_id_number;
use popbase_proto::feeds::feed_record::Payload;
use popbase_proto::feeds::{CheckInsuranceRequest, EnrollmentStatus, RecordsOfRequest};
use popbase_proto::gateway::{PersonSummaryRequest, PersonSummaryResponse, ResidenceStatus};
use popbase_proto::household::{MaritalStatus, PersonView, RegistrationStatus};

use super::standing::{Standing, standings_as_of};
use crate::gate::{Minimise, Release};
use crate::sources::{Sources, division_path, upstream};

/// The checked ID number, and the past day asked for, if any.
pub fn validate(request: &PersonSummaryRequest, today: NaiveDate) -> ServiceResult<(String, Option<NaiveDate>)> {
    let id = validate::id_number("id_number", &request.id_number, today)?.as_str().to_string();
    let as_of = match request.as_of.as_ref().filter(|d| !d.is_unset()) {
        None => None,
        Some(_) => Some(validate::date("as_of", request.as_of.as_ref(), Some(today))?),
    };
    Ok((id, as_of))
}

/// The catalogue fields a request itself uses: `as_of` when it names a day.
pub fn needs(request: &PersonSummaryRequest) -> &'static [&'static str] {
    if request.as_of.as_ref().is_some_and(|d| !d.is_unset()) {
        &["as_of"]
    } else {
        &[]
    }
}

/// Whether the person had active medical insurance at the end of `day`
/// (the feeds' records as of then).
async fn insured_on(sources: &Sources, id: &str, day: NaiveDate) -> ServiceResult<bool> {
    let records = sources
        .feeds
        .records_of(RecordsOfRequest {
            id_number: id.to_string(),
            as_of_unix_millis: popbase_domain::clock::day_end_millis(day),
        })
        .await
        .map_err(|s| upstream("the feeds service", s))?
        .into_inner()
        .records;
    Ok(records
        .iter()
        .any(|r| matches!(&r.payload, Some(Payload::MedicalInsurance(m)) if m.status == EnrollmentStatus::Active as i32)))
}

fn marital_name(code: i32) -> &'static str {
    match MaritalStatus::try_from(code) {
        Ok(MaritalStatus::Unmarried) => "未婚",
        Ok(MaritalStatus::Married) => "已婚",
        Ok(MaritalStatus::Widowed) => "丧偶",
        Ok(MaritalStatus::Divorced) => "离婚",
        _ => "",
    }
}

/// The summary now (`as_of` unset) or at the end of a past day.
pub async fn summary(sources: &Sources, id: &str, today: NaiveDate, as_of: Option<NaiveDate>) -> ServiceResult<PersonSummaryResponse> {
    let ids = vec![id.to_string()];
    // The registry and the feeds are asked at once: the answer waits for the slower, not the sum.
    let insurance = async {
        match as_of {
            Some(day) => insured_on(sources, id, day).await,
            None => Ok(sources
                .feeds
                .check_insurance(CheckInsuranceRequest { id_numbers: ids.clone() })
                .await
                .map_err(|s| upstream("the feeds service", s))?
                .into_inner()
                .active
                .first()
                .copied()
                .unwrap_or(false)),
        }
    };
    let on = as_of.unwrap_or(today);
    let (standing, insured) = tokio::try_join!(standings_as_of(sources, &ids, on, PersonView::Full, as_of), insurance)?;
    let standing = standing.into_iter().next().unwrap_or(Standing::Unknown);
    let mut answer = PersonSummaryResponse {
        masked_id_number: mask_id_number(id),
        medical_insurance_active: insured,
        as_of: as_of.map(Into::into),
        ..Default::default()
    };
    answer.residence_status = match &standing {
        Standing::Registered(_) => ResidenceStatus::Registered,
        Standing::Permit(..) => ResidenceStatus::PermitHolder,
        Standing::ResidenceOnly(..) => ResidenceStatus::ResidenceRegistered,
        Standing::Former(p) if p.status == RegistrationStatus::Deceased as i32 => ResidenceStatus::Deceased,
        Standing::Former(_) => ResidenceStatus::MovedOut,
        Standing::Unknown => ResidenceStatus::Unknown,
    } as i32;
    if let Some(committee) = standing.committee() {
        answer.place = Some(division_path(committee));
    }
    if let Some(p) = standing.person() {
        answer.name = p.name.clone();
        answer.sex = p.sex;
        answer.birth_date = p.birth_date;
        answer.marital_status = marital_name(p.marital_status).into();
        answer.phone = p.phone.clone();
        answer.address_detail = p.address.as_ref().map(|a| a.detail.clone()).unwrap_or_default();
    } else if let Some(r) = standing.registration() {
        answer.name = r.name.clone();
        answer.sex = r.sex;
        answer.birth_date = r.birth_date;
        answer.phone = r.phone.clone();
        answer.address_detail = r.address.as_ref().map(|a| a.detail.clone()).unwrap_or_default();
    }
    answer.birth_year = answer.birth_date.map_or(0, |d| d.year);
    Ok(answer)
}

impl Minimise for PersonSummaryResponse {
    fn minimise(&mut self, approved: &BTreeSet<String>) -> Vec<String> {
        let mut release = Release::new(approved);
        if !release.keep("name") {
            self.name.clear();
        }
        if !release.keep("sex") {
            self.sex = 0;
        }
        if !release.keep("birth_year") {
            self.birth_year = 0;
        }
        if !release.keep("birth_date") {
            self.birth_date = None;
        }
        if !release.keep("residence_status") {
            self.residence_status = 0;
        }
        if !release.keep("place") {
            self.place = None;
        }
        if !release.keep("address_detail") {
            self.address_detail.clear();
        }
        if !release.keep("marital_status") {
            self.marital_status.clear();
        }
        if !release.keep("medical_insurance") {
            self.medical_insurance_active = false;
        }
        if !release.keep("phone") {
            self.phone.clear();
        }
        let released = release.into_fields();
        self.released_fields = released.clone();
        released
    }
}
