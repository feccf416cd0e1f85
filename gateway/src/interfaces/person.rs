//! PersonSummary: one person's standing and basic facts, minimised to the
//! department's approved fields.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use popbase_common::{ServiceResult, validate};
use popbase_domain::mask::mask_id_number;
use popbase_proto::feeds::CheckInsuranceRequest;
use popbase_proto::gateway::{PersonSummaryRequest, PersonSummaryResponse, ResidenceStatus};
use popbase_proto::household::{MaritalStatus, PersonView, RegistrationStatus};

use super::standing::{Standing, standings};
use crate::gate::{Minimise, Release};
use crate::sources::{Sources, division_path, upstream};

pub fn validate(request: &PersonSummaryRequest, today: NaiveDate) -> ServiceResult<String> {
    Ok(validate::id_number("id_number", &request.id_number, today)?.as_str().to_string())
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

pub async fn summary(sources: &Sources, id: &str, today: NaiveDate) -> ServiceResult<PersonSummaryResponse> {
    let ids = vec![id.to_string()];
    // The registry and the feeds are asked at once: the answer waits for the slower, not the sum.
    let insurance = async {
        sources
            .feeds
            .check_insurance(CheckInsuranceRequest { id_numbers: ids.clone() })
            .await
            .map_err(|s| upstream("the feeds service", s))
    };
    let (standing, insurance) = tokio::try_join!(standings(sources, &ids, today, PersonView::Full), insurance)?;
    let standing = standing.into_iter().next().unwrap_or(Standing::Unknown);
    let insured = insurance.into_inner().active.first().copied().unwrap_or(false);
    let mut answer = PersonSummaryResponse {
        masked_id_number: mask_id_number(id),
        medical_insurance_active: insured,
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
