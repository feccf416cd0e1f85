//! The permit lifecycle under the Interim Regulations on Residence Permits
//! (居住证暂行条例, 2016): residence registration, a permit once registered for
//! six months with lawful stable employment, residence or study, a yearly
//! endorsement (签注), expiry when not endorsed, cancellation, and the end of
//! every permit when the holder settles (落户) in the city.
//!
//! Every change is one version-checked batch: a racing second writer gets
//! `Aborted`, or the precondition the first one changed.

use chrono::{Datelike, Months, NaiveDate};
use popbase_common::{ServiceError, ServiceResult};
use popbase_proto::common::Address;
use popbase_proto::residence::{
    Condition, PermitDecision, PermitStatus, RegistrationState, ResidenceBasis, ResidencePermit, ResidenceRegistration,
};
use popbase_storage::{Batch, Read, StorageError, Versioned};

use crate::Permits;
use crate::tables::{self, COUNTERS, Counter, PERMITS, PERMITS_BY_PERSON, REGISTRATIONS, REGISTRATIONS_BY_COMMITTEE};

/// Months of residence registration before a permit may be granted.
pub const MONTHS_BEFORE_PERMIT: u32 = 6;
/// Days before the end of a validity year in which it may be endorsed.
pub const ENDORSEMENT_WINDOW_DAYS: i64 = 30;
/// Serials of permits issued by the service start here, above the range
/// bulk imports use.
pub const SERVICE_PERMIT_SERIAL_START: u64 = 90_000_000;

fn is_valid(permit: &ResidencePermit) -> bool {
    permit.status == PermitStatus::Valid as i32
}

fn aborted(e: StorageError) -> ServiceError {
    match e {
        StorageError::Conflict { .. } => ServiceError::Aborted("a concurrent change to the same resident won; read again and retry".into()),
        other => other.into(),
    }
}

impl Permits {
    fn put_registration(&self, batch: &mut Batch, prior: Option<&Versioned<ResidenceRegistration>>, registration: &ResidenceRegistration) {
        let key = tables::registration_key(&registration.id_number);
        batch.expect_version(&REGISTRATIONS, key.clone(), prior.map(|p| p.version));
        if let Some(old) = prior {
            let committee = Address::committee_of(&old.value.address);
            batch.delete_index(
                &REGISTRATIONS_BY_COMMITTEE,
                tables::by_committee_key(committee, &old.value.id_number),
            );
        }
        batch.put(&REGISTRATIONS, key, registration);
        if registration.state == RegistrationState::Active as i32 {
            let committee = Address::committee_of(&registration.address);
            batch.put_index(
                &REGISTRATIONS_BY_COMMITTEE,
                tables::by_committee_key(committee, &registration.id_number),
            );
        }
    }

    fn put_permit(&self, batch: &mut Batch, prior: Option<u64>, permit: &ResidencePermit) {
        let key = tables::permit_key(&permit.permit_number);
        batch.expect_version(&PERMITS, key.clone(), prior);
        batch.put(&PERMITS, key, permit);
        batch.put_index(
            &PERMITS_BY_PERSON,
            tables::permit_by_person_key(&permit.id_number, &permit.permit_number),
        );
    }

    /// 居住登记 (or re-registration after leaving). `registration` is validated.
    pub fn register(&self, actor: &str, mut registration: ResidenceRegistration, on: NaiveDate) -> ServiceResult<ResidenceRegistration> {
        let prior = self
            .store()
            .get(&REGISTRATIONS, &tables::registration_key(&registration.id_number))?;
        if let Some(old) = &prior
            && old.value.state == RegistrationState::Active as i32
        {
            return Err(ServiceError::precondition(
                "registration.id_number",
                "already holds an active residence registration",
            ));
        }
        registration.state = RegistrationState::Active as i32;
        registration.state_since = Some(on.into());
        if registration.registered_on.is_none() {
            registration.registered_on = Some(on.into());
        }
        let mut batch = Batch::new(actor, "residence_registered").record_values();
        self.put_registration(&mut batch, prior.as_ref(), &registration);
        self.store().commit(batch).map_err(aborted)?;
        Ok(registration)
    }

    /// Decides a permit application. Refusals are answers, not errors: every
    /// condition is reported met or not, with its reason.
    pub fn apply(
        &self,
        actor: &str,
        id_number: &str,
        on: NaiveDate,
        basis: ResidenceBasis,
        evidence: &str,
    ) -> ServiceResult<PermitDecision> {
        let registration = self
            .store()
            .get(&REGISTRATIONS, &tables::registration_key(id_number))?
            .ok_or_else(|| ServiceError::precondition("id_number", "no residence registration: register residence first"))?;
        let mut conditions = Vec::new();
        let mut condition = |code: &str, met: bool, detail: String| {
            conditions.push(Condition {
                code: code.into(),
                met,
                detail,
            })
        };
        let active = registration.value.state == RegistrationState::Active as i32;
        condition(
            "REGISTRATION_ACTIVE",
            active,
            if active {
                "residence registration active"
            } else {
                "residence registration ended"
            }
            .into(),
        );
        let registered_on = registration.value.registered_on.as_ref().and_then(|d| d.to_naive()).unwrap_or(on);
        let eligible_from = registered_on
            .checked_add_months(Months::new(MONTHS_BEFORE_PERMIT))
            .unwrap_or(registered_on);
        condition(
            "SIX_MONTHS_REGISTERED",
            on >= eligible_from,
            format!("registered on {registered_on}; eligible from {eligible_from}"),
        );
        let (basis_met, basis_detail) = self.basis_holds(basis, evidence, on)?;
        condition("BASIS", basis_met, basis_detail);
        let valid_now = self.permits_of(id_number)?.into_iter().find(is_valid);
        condition(
            "NO_VALID_PERMIT",
            valid_now.is_none(),
            match &valid_now {
                Some(p) => format!("permit {} is still valid", p.permit_number),
                None => "no valid permit".into(),
            },
        );
        if !conditions.iter().all(|c| c.met) {
            return Ok(PermitDecision {
                granted: false,
                conditions,
                permit: None,
            });
        }
        let mut batch = Batch::new(actor, "permit_granted").record_values();
        let city = Address::committee_of(&registration.value.address)
            .get(..4)
            .unwrap_or("0000")
            .to_string();
        let number = self.next_permit_number(&mut batch, &city, on.year())?;
        let permit = ResidencePermit {
            permit_number: number,
            id_number: id_number.to_string(),
            address: registration.value.address.clone(),
            issued_on: Some(on.into()),
            valid_until: Some(popbase_domain::calendar::add_years(on, 1).into()),
            endorsements: Vec::new(),
            status: PermitStatus::Valid as i32,
            status_since: Some(on.into()),
            basis: basis as i32,
        };
        // Re-read the registration under the batch: a concurrent change aborts.
        batch.expect_version(&REGISTRATIONS, tables::registration_key(id_number), Some(registration.version));
        self.put_permit(&mut batch, None, &permit);
        self.store().commit(batch).map_err(aborted)?;
        Ok(PermitDecision {
            granted: true,
            conditions,
            permit: Some(permit),
        })
    }

    fn basis_holds(&self, basis: ResidenceBasis, evidence: &str, on: NaiveDate) -> ServiceResult<(bool, String)> {
        let evidence = evidence.trim();
        Ok(match basis {
            ResidenceBasis::Employment if !evidence.is_empty() => (true, format!("lawful stable employment at {evidence}")),
            ResidenceBasis::Employment => (false, "employment needs the employer as evidence".into()),
            ResidenceBasis::Residence if matches!(evidence, "owned" | "rented") => (true, format!("lawful stable residence ({evidence})")),
            ResidenceBasis::Residence => (false, "residence needs \"owned\" or \"rented\" as evidence".into()),
            ResidenceBasis::Study if !evidence.is_empty() => (true, format!("continuous study at {evidence}")),
            ResidenceBasis::Study => (false, "study needs the school as evidence".into()),
            ResidenceBasis::Accompanying => {
                let holder = self
                    .permits_of(evidence)?
                    .into_iter()
                    .any(|p| is_valid(&p) && p.valid_until.and_then(|d| d.to_naive()).is_some_and(|u| u >= on));
                if holder {
                    (true, "accompanies a valid permit holder".into())
                } else {
                    (false, "the person accompanied holds no valid permit".into())
                }
            }
            ResidenceBasis::Unspecified => (false, "no basis given".into()),
        })
    }

    fn next_permit_number(&self, batch: &mut Batch, city: &str, year: i32) -> ServiceResult<String> {
        let key = tables::counter_key(&format!("permit:{city}:{year}"));
        let counter = self.store().get(&COUNTERS, &key)?;
        let serial = counter.as_ref().map_or(SERVICE_PERMIT_SERIAL_START, |c| c.value.next);
        batch.expect_version(&COUNTERS, key.clone(), counter.as_ref().map(|c| c.version));
        batch.put(&COUNTERS, key, &Counter { next: serial + 1 });
        Ok(format!("{city}{year}{serial:08}"))
    }

    fn require_permit(&self, permit_number: &str) -> ServiceResult<Versioned<ResidencePermit>> {
        self.store()
            .get(&PERMITS, &tables::permit_key(permit_number))?
            .ok_or_else(|| ServiceError::precondition("permit_number", "no such permit"))
    }

    /// 签注: within the window before the validity year ends.
    pub fn endorse(&self, actor: &str, permit_number: &str, on: NaiveDate) -> ServiceResult<ResidencePermit> {
        let read = self.require_permit(permit_number)?;
        let mut permit = read.value.clone();
        if !is_valid(&permit) {
            return Err(ServiceError::precondition(
                "permit_number",
                "only a valid permit can be endorsed; apply again",
            ));
        }
        let until = permit.valid_until.and_then(|d| d.to_naive()).unwrap_or(on);
        if on > until {
            return Err(ServiceError::precondition(
                "on",
                format!("the validity year ended on {until}; the permit has expired"),
            ));
        }
        let opens = until - chrono::Duration::days(ENDORSEMENT_WINDOW_DAYS);
        if on < opens {
            return Err(ServiceError::precondition("on", format!("endorsement opens on {opens}")));
        }
        permit.endorsements.push(on.into());
        permit.valid_until = Some(popbase_domain::calendar::add_years(until, 1).into());
        let mut batch = Batch::new(actor, "permit_endorsed").record_values();
        self.put_permit(&mut batch, Some(read.version), &permit);
        self.store().commit(batch).map_err(aborted)?;
        Ok(permit)
    }

    pub fn cancel(&self, actor: &str, permit_number: &str, on: NaiveDate) -> ServiceResult<ResidencePermit> {
        let read = self.require_permit(permit_number)?;
        if !is_valid(&read.value) {
            return Err(ServiceError::precondition("permit_number", "the permit is not valid"));
        }
        let mut permit = read.value.clone();
        permit.status = PermitStatus::Cancelled as i32;
        permit.status_since = Some(on.into());
        let mut batch = Batch::new(actor, "permit_cancelled").record_values();
        self.put_permit(&mut batch, Some(read.version), &permit);
        self.store().commit(batch).map_err(aborted)?;
        Ok(permit)
    }

    /// Expires every valid permit whose validity ended before `on`.
    pub fn expire_due(&self, actor: &str, on: NaiveDate) -> ServiceResult<u64> {
        let mut due = Vec::new();
        self.store().for_each(&PERMITS, &[], |_, row| {
            let ended = row.value.valid_until.and_then(|d| d.to_naive()).is_some_and(|u| u < on);
            if is_valid(&row.value) && ended {
                due.push(row);
            }
            Ok(true)
        })?;
        let mut expired = 0;
        for chunk in due.chunks(1000) {
            let mut batch = Batch::new(actor, "permits_expired").record_values();
            for read in chunk {
                let mut permit = read.value.clone();
                permit.status = PermitStatus::Expired as i32;
                permit.status_since = permit.valid_until;
                self.put_permit(&mut batch, Some(read.version), &permit);
            }
            self.store().commit(batch).map_err(aborted)?;
            expired += chunk.len() as u64;
        }
        Ok(expired)
    }

    /// The holder settled (落户) in the city: their registration ends as
    /// SETTLED and every valid permit as ENDED_BY_SETTLEMENT. Idempotent;
    /// `false` when the person holds no residence registration here.
    pub fn end_by_settlement(&self, actor: &str, id_number: &str, on: NaiveDate) -> ServiceResult<bool> {
        let Some(registration) = self.store().get(&REGISTRATIONS, &tables::registration_key(id_number))? else {
            return Ok(false);
        };
        let mut batch = Batch::new(actor, "ended_by_settlement").record_values();
        if registration.value.state != RegistrationState::Settled as i32 {
            let mut settled = registration.value.clone();
            settled.state = RegistrationState::Settled as i32;
            settled.state_since = Some(on.into());
            self.put_registration(&mut batch, Some(&registration), &settled);
        }
        for permit in self.permits_of(id_number)?.into_iter().filter(is_valid) {
            let read = self.require_permit(&permit.permit_number)?;
            let mut ended = read.value.clone();
            ended.status = PermitStatus::EndedBySettlement as i32;
            ended.status_since = Some(on.into());
            self.put_permit(&mut batch, Some(read.version), &ended);
        }
        if !batch.is_empty() {
            self.store().commit(batch).map_err(aborted)?;
        }
        Ok(true)
    }
}
