//! Settlement policies as data: one TOML file per city in `data/policies/`.
//!
//! A policy is a list of rules (one per path and variant, e.g. Jinan's five
//! talent clauses), each with the area it applies to, the documents it needs,
//! its checks, and the placements it allows; plus the order in which the city
//! places a settling person (自有房屋 → 近亲属家庭户 → 单位集体户 → …).
//! Enum values are written as the proto names without their prefix
//! (`"SPOUSE"`, `"MASTER"`, `"PROPERTY_CERTIFICATE"`), so the files and the
//! API speak one vocabulary. Everything is checked when the file is loaded.

use std::collections::HashSet;

use chrono::NaiveDate;
use popbase_domain::{DivisionLevel, Divisions};
use popbase_proto::household::{DocumentKind, EducationLevel, Kinship, MoveInReason, PlacementKind, PropertyKind, SkillLevel, TitleLevel};
use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("policy {file}: {message}")]
    Invalid { file: String, message: String },
}

/// A proto enum named in a policy file by its value name without the prefix.
macro_rules! proto_name {
    ($wrapper:ident, $enum:ty, $prefix:literal) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $wrapper(pub $enum);

        impl TryFrom<String> for $wrapper {
            type Error = String;
            fn try_from(name: String) -> Result<Self, String> {
                <$enum>::from_str_name(&format!("{}{}", $prefix, name.to_uppercase()))
                    .map(Self)
                    .ok_or_else(|| format!("unknown {} {name:?}", $prefix.trim_end_matches('_').to_lowercase()))
            }
        }
    };
}

proto_name!(KinshipName, Kinship, "KINSHIP_");
proto_name!(DocumentName, DocumentKind, "DOCUMENT_KIND_");
proto_name!(EducationName, EducationLevel, "EDUCATION_LEVEL_");
proto_name!(TitleName, TitleLevel, "TITLE_LEVEL_");
proto_name!(SkillName, SkillLevel, "SKILL_LEVEL_");
proto_name!(PropertyName, PropertyKind, "PROPERTY_KIND_");
proto_name!(PlacementName, PlacementKind, "PLACEMENT_KIND_");
proto_name!(PathName, MoveInReason, "MOVE_IN_REASON_");

/// A calendar day written `"YYYY-MM-DD"` in a policy file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct PolicyDate(pub NaiveDate);

impl TryFrom<String> for PolicyDate {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        NaiveDate::parse_from_str(&text, "%Y-%m-%d")
            .map(Self)
            .map_err(|_| format!("{text:?} is not a date written YYYY-MM-DD"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetArea {
    /// Residents' committees (城镇).
    #[default]
    Urban,
    /// Villagers' committees (农村).
    Rural,
    Any,
}

/// Ages at least, by sex (Jinan: parents joining a child at 60 / 55).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct AgeBySex {
    pub male: u32,
    pub female: u32,
}

/// One condition of a rule. Written in TOML as a bare string for the ones
/// without parameters (`"minor"`) or a one-key table (`{ age_at_most = 45 }`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The property at the target is of one of these kinds.
    PropertyKindIn(Vec<PropertyName>),
    /// The applicant rents at the target address.
    RentingAtTarget,
    /// Nobody is registered at the target address (Zibo rental rule).
    NoRegistrationAtAddress,
    /// A claimed relation of one of these kinds, verified against the registry
    /// (or, when the registry lacks the links, proven by documents).
    Relation(Vec<KinshipName>),
    /// The sponsor is registered at a residents' committee.
    SponsorUrban,
    /// The sponsor is 18 or older.
    SponsorAdult,
    AgeAtMost(u32),
    AgeAtLeast(AgeBySex),
    Minor,
    Adult,
    Unmarried,
    EducationAtLeast(EducationName),
    FullTimeEducation,
    Student,
    TitleAtLeast(TitleName),
    SkillAtLeast(SkillName),
    TalentCategoryIn(Vec<String>),
    PensionMonthsAtLeast(u32),
    ResidencePermit,
    EmployedInCity,
    BusinessInCity,
    /// Owns or rents a home at the target (合法稳定住所).
    StableResidence,
    /// The applicant is not registered now under any of these division codes.
    NotRegisteredUnder(Vec<String>),
    /// Both parents are deceased (registry, or death certificates).
    ParentsDeceased,
    /// The applicant's original registration was in the target county.
    OriginInTargetCounty,
    HomesteadRights,
    /// The applicant holds no rural homestead anywhere (Weihai 三(三)).
    NoHomesteadRights,
    /// The sponsor holds a homestead in the target village (rural 投靠).
    SponsorHomesteadRights,
    /// The applicant lives at the target habitually (经常居住生活).
    LivesAtTarget,
    /// Sent by an organisation to a post in a village (Zibo 三(七)).
    DispatchedToVillage,
    /// Registered now in a school's collective household (Weihai 三(四)).
    RegisteredInSchoolCollective,
    Veteran,
    /// A repeated spouse settlement needs this many years of marriage.
    RepeatSpouseSettlementAfterYears(u32),
    /// At least one of these holds.
    AnyOf(Vec<Check>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub title: String,
    /// The item of the policy document the rule implements, e.g. "二(一)1"
    /// (docs/domain.md maps every rule to its seed item).
    pub cite: String,
    pub path: PathName,
    #[serde(default)]
    pub target: TargetArea,
    /// Zone ids (Jinan's zoned policy); empty: the whole city.
    #[serde(default)]
    pub zones: Vec<String>,
    #[serde(default)]
    pub documents: Vec<DocumentName>,
    #[serde(default)]
    pub checks: Vec<Check>,
    /// Placements this rule allows; the policy's order picks among them.
    pub placements: Vec<PlacementName>,
    /// The clause lets the applicant's spouse and minor children settle
    /// with them (本人、配偶及未成年子女, 本人及其近亲属).
    #[serde(default)]
    pub brings_family: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    pub id: String,
    pub name: String,
    /// Whole counties (6-digit codes) in the zone.
    #[serde(default)]
    pub counties: Vec<String>,
    /// Single streets (9-digit codes) in the zone.
    #[serde(default)]
    pub streets: Vec<String>,
    /// Streets of the listed counties that belong elsewhere.
    #[serde(default)]
    pub except_streets: Vec<String>,
}

impl Zone {
    pub fn contains_street(&self, street_code: &str) -> bool {
        if self.except_streets.iter().any(|s| s == street_code) {
            return false;
        }
        self.streets.iter().any(|s| s == street_code) || self.counties.iter().any(|c| street_code.starts_with(c.as_str()))
    }
}

/// A transition clause of a policy document, quoted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transition {
    pub cite: String,
    pub text: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub id: String,
    pub title: String,
    pub document: String,
    /// 4-digit prefecture code the policy governs.
    pub city_code: String,
    /// The first day the policy is in force.
    pub in_force_from: PolicyDate,
    /// Its last day; absent: in force until replaced.
    #[serde(default)]
    pub in_force_until: Option<PolicyDate>,
    /// The document's own words on its validity, quoted.
    pub validity: String,
    /// What the document says of applications and rules around its start
    /// and end (过渡, 原文件废止), quoted with their items.
    #[serde(default)]
    pub transitions: Vec<Transition>,
    pub placement_order: Vec<PlacementName>,
    #[serde(default)]
    pub zones: Vec<Zone>,
    pub rules: Vec<Rule>,
}

impl Policy {
    /// Parses and checks one policy file.
    pub fn parse(file: &str, text: &str, divisions: &Divisions) -> Result<Policy, PolicyError> {
        let invalid = |message: String| PolicyError::Invalid {
            file: file.to_string(),
            message,
        };
        let policy: Policy = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        divisions
            .require(&policy.city_code, DivisionLevel::City)
            .map_err(|e| invalid(format!("city_code: {e}")))?;
        if let Some(until) = policy.in_force_until
            && until < policy.in_force_from
        {
            return Err(invalid("in_force_until is before in_force_from".into()));
        }
        let zone_ids: HashSet<&str> = policy.zones.iter().map(|z| z.id.as_str()).collect();
        for zone in &policy.zones {
            for code in &zone.counties {
                divisions
                    .require(code, DivisionLevel::County)
                    .map_err(|e| invalid(format!("zone {}: {e}", zone.id)))?;
            }
            for code in zone.streets.iter().chain(&zone.except_streets) {
                divisions
                    .require(code, DivisionLevel::Street)
                    .map_err(|e| invalid(format!("zone {}: {e}", zone.id)))?;
            }
        }
        let mut rule_ids = HashSet::new();
        for rule in &policy.rules {
            if !rule_ids.insert(rule.id.as_str()) {
                return Err(invalid(format!("rule id {} appears twice", rule.id)));
            }
            if let Some(zone) = rule.zones.iter().find(|z| !zone_ids.contains(z.as_str())) {
                return Err(invalid(format!("rule {}: unknown zone {zone}", rule.id)));
            }
            if rule.cite.trim().is_empty() {
                return Err(invalid(format!("rule {}: cite the policy item it implements", rule.id)));
            }
            if rule.placements.is_empty() {
                return Err(invalid(format!("rule {}: no placements", rule.id)));
            }
            if let Some(p) = rule.placements.iter().find(|p| !policy.placement_order.contains(p)) {
                return Err(invalid(format!("rule {}: placement {:?} is not in placement_order", rule.id, p.0)));
            }
        }
        Ok(policy)
    }

    /// Whether the policy is in force on `day`.
    pub fn in_force_on(&self, day: NaiveDate) -> bool {
        self.in_force_from.0 <= day && self.in_force_until.is_none_or(|until| day <= until.0)
    }

    /// "2017-08-01 to 2022-07-31", or "from 2021-06-01".
    pub fn window(&self) -> String {
        match self.in_force_until {
            Some(until) => format!("{} to {}", self.in_force_from.0, until.0),
            None => format!("from {}", self.in_force_from.0),
        }
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// The zone a street lies in, if the policy is zoned.
    pub fn zone_of(&self, street_code: &str) -> Option<&Zone> {
        self.zones.iter().find(|z| z.contains_street(street_code))
    }

    /// Rank of a placement in the city's order (lower is placed first).
    pub fn placement_rank(&self, kind: PlacementKind) -> usize {
        self.placement_order.iter().position(|p| p.0 == kind).unwrap_or(usize::MAX)
    }
}

/// The policies shipped with popbase, one per seed city.
pub const SHIPPED: [(&str, &str); 4] = [
    ("zibo-2021.toml", include_str!("../../../../data/policies/zibo-2021.toml")),
    ("liaocheng-2022.toml", include_str!("../../../../data/policies/liaocheng-2022.toml")),
    ("weihai-2021.toml", include_str!("../../../../data/policies/weihai-2021.toml")),
    ("jinan-2017.toml", include_str!("../../../../data/policies/jinan-2017.toml")),
];
