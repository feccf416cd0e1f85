//! The `events` scenario: a police counter's day at a city's volume,
//! through the gateway's write path (`RegistryEvents.Submit`: authorised,
//! audited durably, forwarded to the registry, which commits durably).
//!
//! Calls alternate between a birth (a child registered into the mother's
//! household: the parents and the household read, a new ID number issued,
//! the child written with its indexes and the event) and a death (the
//! person read, deregistered, the event written). Deaths take active
//! persons who are not mothers, each once; mothers are taken in turn (see
//! [`spread`] for the order).

use std::sync::Arc;

use futures::future::BoxFuture;
use popbase_proto::popbase::common::v1::{Date, Sex};
use popbase_proto::popbase::gateway::v1::LifeEventSubmission;
use popbase_proto::popbase::gateway::v1::life_event_submission::Event;
use popbase_proto::popbase::gateway::v1::registry_events_client::RegistryEventsClient;
use popbase_proto::popbase::household::v1::{EventContext, RegisterBirthRequest, RegisterDeathRequest};

use crate::engine::Scenario;
use crate::scenarios::{Gateway, status};
use crate::setup::Mother;

pub struct LifeEvents {
    pub gateway: Gateway,
    pub mothers: Arc<Vec<Mother>>,
    /// Active persons who may die (not the mothers), each once.
    pub dying: Arc<Vec<String>>,
    /// The day registered, in the city's time zone.
    pub today: chrono::NaiveDate,
}

/// Births are registered up to this many days after the day of birth. A
/// county issues at most 500 ID numbers a day to each sex (GB 11643's
/// three-digit sequence): spreading births over the days before keeps a
/// run of tens of thousands of births within the numbers a city has.
const BIRTH_DAYS_BACK: u64 = 365;

/// Tries of a call the registry answered `Aborted` (two events racing on
/// one record, say two births in one county and day taking the same
/// sequence number): a counter's system reads again and retries, and so
/// does this scenario, the call's latency counting every try.
const TRIES: usize = 3;

fn date(day: chrono::NaiveDate) -> Date {
    use chrono::Datelike;
    Date {
        year: day.year(),
        month: day.month() as i32,
        day: day.day() as i32,
    }
}

const PURPOSE: &str = "HOUSEHOLD_REGISTRATION";
const OFFICER: &str = "loadtest-counter-01";

impl LifeEvents {
    fn context(&self) -> Option<EventContext> {
        Some(EventContext {
            actor: String::new(),
            occurred_on: Some(date(self.today)),
        })
    }

    fn birth(&self, n: u64) -> Event {
        let mother = &self.mothers[spread(n / 2, self.mothers.len())];
        let born = self.today - chrono::Days::new(1 + (n / 2) % BIRTH_DAYS_BACK);
        Event::Birth(RegisterBirthRequest {
            context: self.context(),
            name: "测试婴儿".into(),
            sex: if n.is_multiple_of(4) { Sex::Female } else { Sex::Male } as i32,
            birth_date: Some(date(born)),
            birthplace_code: mother.household_id.get(..6).unwrap_or_default().to_string(),
            ethnicity: String::new(),
            mother_id_number: mother.id_number.clone(),
            father_id_number: String::new(),
            household_id: mother.household_id.clone(),
            birth_certificate_number: format!("O{n:017}"),
        })
    }

    fn death(&self, n: u64) -> Event {
        let person = &self.dying[spread(n / 2, self.dying.len())];
        Event::Death(RegisterDeathRequest {
            context: self.context(),
            id_number: person.clone(),
            death_certificate_number: format!("D{n:017}"),
        })
    }
}

/// The `k`-th of `len` in an order that visits each once per `len` calls
/// but never takes neighbours of the listing one after the other: persons
/// listed together share a household, and two events of one household at
/// once are a conflict the registry refuses (`Aborted`, retry), which a
/// counter serving one family at a time never meets.
fn spread(k: u64, len: usize) -> usize {
    let len = len.max(1) as u64;
    let step = [7919u64, 7907, 7901, 7883]
        .into_iter()
        .find(|p| !len.is_multiple_of(*p))
        .unwrap_or(1);
    ((k % len) * step % len) as usize
}

impl Scenario for LifeEvents {
    fn name(&self) -> &'static str {
        "events"
    }

    fn call(&self, n: u64) -> BoxFuture<'static, Result<u64, String>> {
        let event = if n.is_multiple_of(2) { self.birth(n) } else { self.death(n) };
        let mut client = RegistryEventsClient::new(self.gateway.channel(n));
        let submission = LifeEventSubmission {
            purpose: PURPOSE.into(),
            officer_id: OFFICER.into(),
            event: Some(event),
        };
        let gateway = self.gateway.clone();
        Box::pin(async move {
            let mut tries = 0;
            loop {
                tries += 1;
                match client.submit(gateway.request(submission.clone())).await {
                    Ok(_) => return Ok(1),
                    Err(e) if e.code() == tonic::Code::Aborted && tries < TRIES => continue,
                    Err(e) => return Err(status(e)),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn spread_visits_each_once_and_never_neighbours_in_turn() {
        for len in [1usize, 2, 7919, 7919 * 3, 10_000] {
            let visited: std::collections::HashSet<usize> = (0..len as u64).map(|k| spread(k, len)).collect();
            assert_eq!(visited.len(), len, "len {len}");
        }
        let (a, b) = (spread(0, 10_000), spread(1, 10_000));
        assert!(a.abs_diff(b) > 1);
    }
}
