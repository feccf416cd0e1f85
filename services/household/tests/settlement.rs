//! Every rule of every shipped settlement policy, with an eligible and a
//! refused case each (the refusal's failing check asserted), against a real
//! registry whose kinship links the engine verifies.

mod support;

use std::collections::BTreeSet;

use popbase_household::settlement;
use popbase_proto::household::{
    DocumentKind as D, EducationLevel, HouseholdKind, HouseholdStatus, Kinship as K, MaritalStatus, MilitaryService, MoveOutReason,
    PlacementKind as P, PropertyKind, RegistrationStatus, Relationship, SettlementEvaluation, SkillLevel, TitleLevel,
};
use support::{App, City, address, outsider, person};

/// Evaluates `app` under `policy` and checks one rule's verdict: `Ok(placement)`
/// for eligible, `Err(code)` for a refusal whose failed checks include `code`.
struct Checker<'c> {
    city: &'c City,
    policy: &'static str,
    eligible: BTreeSet<String>,
    refused: BTreeSet<String>,
}

impl<'c> Checker<'c> {
    fn new(city: &'c City, policy: &'static str) -> Self {
        Self {
            city,
            policy,
            eligible: BTreeSet::new(),
            refused: BTreeSet::new(),
        }
    }

    fn evaluate(&self, app: &App) -> SettlementEvaluation {
        let policy = self.city.policies.get(self.policy).expect("policy");
        settlement::evaluate(&self.city.registry, policy, &app.0).expect("evaluate")
    }

    fn expect(&mut self, rule: &str, app: &App, verdict: Result<P, &str>) {
        let evaluation = self.evaluate(app);
        let found = evaluation
            .rules
            .iter()
            .find(|r| r.rule_id == rule)
            .unwrap_or_else(|| panic!("{} has no rule {rule}", self.policy));
        let failed: Vec<String> = found
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| format!("{} ({})", c.code, c.detail))
            .collect();
        match verdict {
            Ok(placement) => {
                assert!(found.eligible, "{}/{rule} should be eligible; failed: {failed:?}", self.policy);
                assert_eq!(
                    found.placement.as_ref().map(|p| p.kind()),
                    Some(placement),
                    "{}/{rule} placement",
                    self.policy
                );
                self.eligible.insert(rule.to_string());
            }
            Err(code) => {
                assert!(!found.eligible, "{}/{rule} should be refused", self.policy);
                assert!(
                    failed.iter().any(|f| f.starts_with(code)),
                    "{}/{rule} should fail {code}; failed: {failed:?}",
                    self.policy
                );
                self.refused.insert(rule.to_string());
            }
        }
    }

    /// Every rule of the policy was seen both eligible and refused.
    fn assert_covered(&self) {
        let all: BTreeSet<String> = self
            .city
            .policies
            .get(self.policy)
            .expect("policy")
            .rules
            .iter()
            .map(|r| r.id.clone())
            .collect();
        assert_eq!(self.eligible, all, "{}: rules without an eligible case", self.policy);
        assert_eq!(self.refused, all, "{}: rules without a refused case", self.policy);
    }
}

fn property(app: App, kind: PropertyKind) -> App {
    app.docs(&[D::PropertyCertificate]).facts(|f| f.property_kind = kind as i32)
}

fn renting(app: App) -> App {
    app.docs(&[D::RentalRegistration, D::OwnerConsent])
        .facts(|f| f.renting_at_target = true)
}

/// Someone who left a rural household of `city` and may return to it.
fn moved_out_villager(city: &City) -> popbase_domain::IdNumber {
    let id = support::id_in(&city.rural[..6], 35, true);
    let mut record = person(&id, &city.rural_family, &city.rural, Relationship::Son);
    record.status = RegistrationStatus::MovedOut as i32;
    record.moved_out_reason = MoveOutReason::OutOfCity as i32;
    let household = city.registry.household(&city.rural_family).expect("read").expect("household");
    city.add(household, vec![record]);
    id
}

/// The shared urban and rural cases of the zero-threshold cities.
fn common_cases(checker: &mut Checker<'_>, city: &City) {
    // Relatives: the son is unmarried with no spouse recorded (proof decides);
    // the head's recorded spouse contradicts a second spouse claim.
    let to_family = address(&city.urban, "幸福路1号");
    let bride = outsider(28, false);
    let spouse_claim = App::new(&bride, to_family.clone())
        .relation(&city.son, K::Spouse)
        .docs(&[D::KinshipProof]);
    checker.expect("relative", &spouse_claim, Ok(P::RelativeHousehold));
    let rival = App::new(&outsider(60, false), to_family.clone())
        .relation(&city.head, K::Spouse)
        .docs(&[D::KinshipProof]);
    checker.expect("relative", &rival, Err("KINSHIP_VERIFIED"));

    // Rural return to the household of origin.
    let villager = moved_out_villager(city);
    let home = address(&city.rural, "幸福路1号");
    let returning = App::new(&villager, home.clone())
        .docs(&[D::HomesteadCertificate])
        .facts(|f| f.homestead_rights = true);
    checker.expect("rural-return", &returning, Ok(P::OriginHousehold));
    let no_homestead = App::new(&villager, home).docs(&[D::HomesteadCertificate]);
    checker.expect("rural-return", &no_homestead, Err("HOMESTEAD_RIGHTS"));
}

#[test]
fn zibo_2021_every_path() {
    let city = City::new("3703", "3703");
    let mut c = Checker::new(&city, "zibo-2021");
    common_cases(&mut c, &city);
    let home = address(&city.urban, "新区9号楼1单元101室");
    let a = outsider(30, true);
    let base = App::new(&a, home.clone());

    c.expect("property", &property(base.clone(), PropertyKind::Apartment), Ok(P::OwnProperty));
    c.expect("property", &property(base.clone(), PropertyKind::Commercial), Err("PROPERTY_KIND"));

    c.expect("rental", &renting(base.clone()), Ok(P::RentalAddress));
    let occupied = renting(App::new(&a, address(&city.urban, "幸福路1号")));
    c.expect("rental", &occupied, Err("NO_REGISTRATION_AT_ADDRESS"));

    let employed = base.clone().docs(&[D::LabourContract]).facts(|f| {
        f.employed_in_city = true;
        f.employer_household_id = city.unit_collective.clone();
    });
    c.expect("employment", &employed, Ok(P::UnitCollective));
    c.expect("employment", &base.clone().docs(&[D::LabourContract]), Err("EMPLOYED_IN_CITY"));

    let business = base.clone().docs(&[D::BusinessLicense]).facts(|f| f.runs_business_in_city = true);
    c.expect("business", &business, Ok(P::CommunityCollective));
    c.expect(
        "business",
        &base.clone().facts(|f| f.runs_business_in_city = true),
        Err("DOCUMENTS"),
    );

    let graduate = base.clone().facts(|f| f.education = EducationLevel::Bachelor as i32);
    c.expect("talent", &graduate, Ok(P::TalentCollective));
    let unskilled = base.clone().facts(|f| f.education = EducationLevel::JuniorSecondary as i32);
    c.expect("talent", &unskilled, Err("ANY_OF"));
    // 市外人才: a graduate registered in the city already is no talent settling here.
    let local = graduate.clone().facts(|f| f.from_code = "370302".into());
    c.expect("talent", &local, Err("REGISTERED_OUTSIDE_ZONE"));

    // Rural relatives: only spouses, parents joining adult children, unmarried children.
    let rural_home = address(&city.rural, "幸福路1号");
    let wife = App::new(&outsider(38, false), rural_home.clone())
        .relation(&city.rural_head, K::Spouse)
        .docs(&[D::KinshipProof]);
    c.expect("rural-relative", &wife, Ok(P::RelativeHousehold));
    let brother = App::new(&outsider(45, true), rural_home)
        .relation(&city.rural_head, K::Sibling)
        .docs(&[D::KinshipProof]);
    c.expect("rural-relative", &brother, Err("KINSHIP_VERIFIED"));

    let rural_target = address(&city.rural, "村东2号");
    let veteran = App::new(&a, rural_target.clone()).facts(|f| {
        f.veteran = true;
        f.runs_business_in_city = true;
    });
    c.expect("rural-collective", &veteran, Ok(P::RuralCollective));
    let neither = App::new(&a, rural_target.clone()).facts(|f| f.runs_business_in_city = true);
    c.expect("rural-collective", &neither, Err("ANY_OF"));
    // 三(七): a researcher sent to a village post settles in its collective.
    let dispatched = App::new(&a, rural_target.clone()).facts(|f| f.dispatched_to_village = true);
    c.expect("rural-dispatched", &dispatched, Ok(P::RuralCollective));
    c.expect("rural-dispatched", &App::new(&a, rural_target), Err("DISPATCHED_TO_VILLAGE"));
    c.assert_covered();

    // The whole evaluation recommends the placement first in the city's order.
    let both = property(employed, PropertyKind::Residence);
    let evaluation = c.evaluate(&both);
    assert_eq!(evaluation.placement.map(|p| p.kind()), Some(P::OwnProperty));
}

#[test]
fn liaocheng_2022_every_path_and_the_order() {
    let city = City::new("3715", "3715");
    let mut c = Checker::new(&city, "liaocheng-2022");
    common_cases(&mut c, &city);
    let home = address(&city.urban, "新区9号楼1单元101室");
    let a = outsider(30, true);
    let base = App::new(&a, home.clone());

    c.expect("property", &property(base.clone(), PropertyKind::Commercial), Ok(P::OwnProperty));
    c.expect(
        "property",
        &base.clone().facts(|f| f.property_kind = PropertyKind::Residence as i32),
        Err("DOCUMENTS"),
    );

    // Without the owner's consent a renter goes to the community collective.
    let no_consent = base.clone().docs(&[D::RentalRegistration]).facts(|f| f.renting_at_target = true);
    c.expect("rental", &no_consent, Ok(P::CommunityCollective));
    c.expect("rental", &base.clone().facts(|f| f.renting_at_target = true), Err("DOCUMENTS"));

    let employed = base.clone().docs(&[D::LabourContract]).facts(|f| f.employed_in_city = true);
    c.expect("employment", &employed, Ok(P::CommunityCollective));
    c.expect("employment", &base.clone().docs(&[D::LabourContract]), Err("EMPLOYED_IN_CITY"));
    // 经商 needs the business licence, not a labour contract.
    let trader = base.clone().docs(&[D::BusinessLicense]).facts(|f| f.runs_business_in_city = true);
    c.expect("business", &trader, Ok(P::CommunityCollective));
    c.expect("business", &trader.clone().without(D::BusinessLicense), Err("DOCUMENTS"));

    let talent = base.clone().facts(|f| f.talent_category = "D".into());
    c.expect("talent", &talent, Ok(P::TalentCollective));
    c.expect("talent", &base.clone(), Err("ANY_OF"));
    // 非本市户籍: someone registered in Liaocheng already does not settle as a talent.
    let local = talent.clone().facts(|f| f.from_code = "371502".into());
    c.expect("talent", &local, Err("REGISTERED_OUTSIDE_ZONE"));

    // Graduates return to their household of origin; veterans may also go to
    // the township collective (三(二)1).
    let rural_target = address(&city.rural, "村东2号");
    let villager = moved_out_villager(&city);
    let graduate = App::new(&villager, rural_target.clone()).facts(|f| f.education = EducationLevel::Bachelor as i32);
    c.expect("graduate-return", &graduate, Ok(P::OriginHousehold));
    let stranger = App::new(&outsider(23, false), rural_target.clone()).facts(|f| f.education = EducationLevel::Bachelor as i32);
    c.expect("graduate-return", &stranger, Err("ORIGIN_IN_TARGET_COUNTY"));
    let native = support::id_in(&city.rural[..6], 26, true);
    let veteran = App::new(&native, rural_target.clone())
        .docs(&[D::DischargeCertificate])
        .facts(|f| f.veteran = true);
    c.expect("veteran-return", &veteran, Ok(P::RuralCollective));
    c.expect("veteran-return", &veteran.clone().facts(|f| f.veteran = false), Err("VETERAN"));

    // 入乡返乡: graduates and veterans working or starting a business in a village.
    let returner = App::new(&outsider(27, true), rural_target.clone()).facts(|f| {
        f.education = EducationLevel::JuniorCollege as i32;
        f.runs_business_in_city = true;
    });
    c.expect("rural-entrepreneur", &returner, Ok(P::RuralCollective));
    c.expect(
        "rural-entrepreneur",
        &returner.clone().facts(|f| f.runs_business_in_city = false),
        Err("ANY_OF"),
    );

    // 三投靠 in a village: the sponsor's homestead and the applicant living there.
    let rural_home = address(&city.rural, "幸福路1号");
    let wife = App::new(&outsider(38, false), rural_home.clone())
        .relation(&city.rural_head, K::Spouse)
        .docs(&[D::KinshipProof, D::HomesteadCertificate])
        .facts(|f| f.lives_at_target = true);
    c.expect("rural-relative", &wife, Ok(P::RelativeHousehold));
    c.expect(
        "rural-relative",
        &wife.clone().without(D::HomesteadCertificate),
        Err("SPONSOR_HOMESTEAD_RIGHTS"),
    );
    c.expect(
        "rural-relative",
        &wife.clone().facts(|f| f.lives_at_target = false),
        Err("LIVES_AT_TARGET"),
    );
    c.assert_covered();

    // A talent with an employer's unit collective goes there before the talent collective.
    let with_unit = talent.facts(|f| f.employer_household_id = city.unit_collective.clone());
    assert_eq!(c.evaluate(&with_unit).placement.map(|p| p.kind()), Some(P::UnitCollective));
}

#[test]
fn weihai_2021_every_path_with_its_documents() {
    let city = City::new("3710", "3710");
    let mut c = Checker::new(&city, "weihai-2021");
    let home = address(&city.urban, "新区9号楼1单元101室");
    let a = outsider(30, true);
    let base = App::new(&a, home.clone());

    c.expect("residence", &property(base.clone(), PropertyKind::Residence), Ok(P::OwnProperty));
    c.expect(
        "residence",
        &property(base.clone(), PropertyKind::Unspecified),
        Err("PROPERTY_KIND"),
    );

    c.expect("rental", &renting(base.clone()), Ok(P::RentalAddress));
    let no_consent = renting(base.clone()).without(D::OwnerConsent);
    c.expect("rental", &no_consent, Err("DOCUMENTS"));

    let employed = base.clone().docs(&[D::LabourContract, D::SocialInsuranceProof]).facts(|f| {
        f.employed_in_city = true;
        f.pension_insurance_months = 3;
    });
    c.expect("employment", &employed, Ok(P::CommunityCollective));
    c.expect(
        "employment",
        &employed.clone().facts(|f| f.pension_insurance_months = 0),
        Err("PENSION_INSURANCE"),
    );

    let business = base.clone().docs(&[D::BusinessLicense]).facts(|f| f.runs_business_in_city = true);
    c.expect("business", &business, Ok(P::CommunityCollective));
    c.expect("business", &base.clone().docs(&[D::BusinessLicense]), Err("BUSINESS_IN_CITY"));

    // Weihai asks kinship proof of every relative, even a verified one.
    let family = address(&city.urban, "幸福路1号");
    let mother = App::new(&outsider(58, false), family.clone()).relation(&city.son, K::Child);
    c.expect("relative", &mother, Err("DOCUMENTS"));
    let bride = App::new(&outsider(28, false), family)
        .relation(&city.son, K::Spouse)
        .docs(&[D::KinshipProof]);
    c.expect("relative", &bride, Ok(P::RelativeHousehold));

    let villager = moved_out_villager(&city);
    let rural_home = address(&city.rural, "幸福路1号");
    let returning = App::new(&villager, rural_home.clone())
        .docs(&[D::HomesteadCertificate])
        .facts(|f| f.homestead_rights = true);
    c.expect("rural-return", &returning, Ok(P::OriginHousehold));
    c.expect(
        "rural-return",
        &returning.clone().without(D::HomesteadCertificate),
        Err("DOCUMENTS"),
    );

    let child = support::id_in("110105", 20, false);
    let unmarried_child = App::new(&child, rural_home.clone())
        .relation(&city.rural_head, K::Parent)
        .docs(&[D::KinshipProof, D::HomesteadCertificate])
        .facts(|f| {
            f.marital_status = MaritalStatus::Unmarried as i32;
            f.lives_at_target = true;
        });
    c.expect("rural-relative", &unmarried_child, Ok(P::RelativeHousehold));
    let married_child = unmarried_child.clone().facts(|f| f.marital_status = MaritalStatus::Married as i32);
    c.expect("rural-relative", &married_child, Err("ANY_OF"));

    let rural_target = address(&city.rural, "村东2号");
    let graduate = App::new(&a, rural_target.clone()).facts(|f| {
        f.education = EducationLevel::JuniorCollege as i32;
        f.employed_in_city = true;
    });
    c.expect("rural-entrepreneur", &graduate, Ok(P::CommunityCollective));
    let idle = graduate.clone().facts(|f| f.employed_in_city = false);
    c.expect("rural-entrepreneur", &idle, Err("ANY_OF"));
    // 本人不具有农村宅基地使用权证件的 (三(三)).
    let with_homestead = graduate.clone().facts(|f| f.homestead_rights = true);
    c.expect("rural-entrepreneur", &with_homestead, Err("NO_HOMESTEAD_RIGHTS"));

    // 三(四): graduates registered in a school's collective household.
    let (graduate, school) = school_graduate(&city);
    let urban_graduate = App::new(&graduate, address(&city.urban, "新区9号楼2单元202室"))
        .docs(&[D::StudentStatus])
        .facts(|f| {
            f.full_time_education = true;
            f.education = EducationLevel::Bachelor as i32;
        });
    c.expect("graduate-urban", &urban_graduate, Ok(P::CommunityCollective));
    let not_in_school = App::new(&outsider(23, true), address(&city.urban, "新区9号楼2单元202室"))
        .docs(&[D::StudentStatus])
        .facts(|f| {
            f.full_time_education = true;
            f.education = EducationLevel::Bachelor as i32;
        });
    c.expect("graduate-urban", &not_in_school, Err("SCHOOL_COLLECTIVE"));
    let going_home = App::new(&graduate, address(&city.rural, "幸福路1号"))
        .relation(&city.rural_head, K::Parent)
        .docs(&[D::StudentStatus])
        .facts(|f| {
            f.full_time_education = true;
            f.education = EducationLevel::Bachelor as i32;
        });
    c.expect("graduate-return", &going_home, Ok(P::RelativeHousehold));
    c.expect(
        "graduate-return",
        &going_home.clone().facts(|f| f.full_time_education = false),
        Err("FULL_TIME_EDUCATION"),
    );
    assert!(!school.is_empty());
    c.assert_covered();
}

/// A rural head's daughter registered in a school's collective household in
/// the city's urban county: a graduate of Weihai 三(四).
fn school_graduate(city: &City) -> (popbase_domain::IdNumber, String) {
    let school = city
        .registry
        .create_collective(
            &support::context(),
            HouseholdKind::CollectiveSchool,
            "某某学院集体户",
            &address(&city.urban, "学院路1号"),
        )
        .expect("school collective")
        .household
        .expect("household");
    let graduate = support::id_in(&city.rural[..6], 22, false);
    let mut record = person(&graduate, &school.household_id, &city.urban, Relationship::CollectiveMember);
    record.father_id_number = city.rural_head.as_str().into();
    record.marital_status = MaritalStatus::Unmarried as i32;
    city.add(school.clone(), vec![record]);
    (graduate, school.household_id)
}

/// Jinan's applicants come from outside the five districts, with work and a home.
fn jinan_worker(app: App) -> App {
    app.docs(&[
        D::LabourContract,
        D::SocialInsuranceProof,
        D::TitleCertificate,
        D::DegreeCertificate,
        D::ResidencePermit,
    ])
    .facts(|f| {
        f.employed_in_city = true;
        f.renting_at_target = true;
        f.pension_insurance_months = 36;
        f.holds_residence_permit = true;
        f.full_time_education = true;
        f.from_code = "370124".into();
    })
}

#[test]
fn jinan_2017_zones_talent_and_relatives() {
    // Sponsors in the optimized zone (历下区); the encouraged zone is 王舍人街道.
    let city = City::new("370102", "370124");
    let mut c = Checker::new(&city, "jinan-2017");
    let optimized = address(&city.urban, "新区9号楼1单元101室");
    let encouraged = address(&support::committee_in("370112009", true), "新区1号");
    let changqing = address(&support::committee_in("370113", true), "新区2号");
    let shanghe = address(&support::committee_in("370126", true), "新区3号");
    let laiwu = address(&support::committee_in("370116", true), "新区4号");
    let worker = |age: u32| jinan_worker(App::new(&outsider(age, true), optimized.clone()));

    let recognised = worker(50).docs(&[D::TalentRecognition]).facts(|f| f.talent_category = "B".into());
    c.expect("talent-recognised", &recognised, Ok(P::TalentCollective));
    c.expect(
        "talent-recognised",
        &recognised.clone().without(D::TalentRecognition),
        Err("DOCUMENTS"),
    );

    let master = worker(48).facts(|f| f.education = EducationLevel::Master as i32);
    c.expect("talent-degree", &master, Ok(P::TalentCollective));
    let at_laiwu = master.clone().at(laiwu.clone());
    c.expect("talent-degree", &at_laiwu, Err("ZONE"));

    let engineer = worker(50).facts(|f| f.title = TitleLevel::Intermediate as i32);
    c.expect("talent-intermediate", &engineer, Ok(P::TalentCollective));
    c.expect(
        "talent-intermediate",
        &worker(51).facts(|f| f.title = TitleLevel::Intermediate as i32),
        Err("AGE_AT_MOST"),
    );

    let skilled = worker(45).facts(|f| {
        f.skill = SkillLevel::SeniorWorker as i32;
        f.pension_insurance_months = 24;
    });
    c.expect("talent-junior", &skilled, Ok(P::TalentCollective));
    c.expect(
        "talent-junior",
        &skilled.clone().facts(|f| f.pension_insurance_months = 23),
        Err("PENSION_INSURANCE"),
    );

    let bachelor = worker(45).facts(|f| f.education = EducationLevel::Bachelor as i32);
    c.expect("talent-graduate", &bachelor, Ok(P::TalentCollective));
    let core_resident = bachelor.clone().facts(|f| f.from_code = "370102".into());
    c.expect("talent-graduate", &core_resident, Err("REGISTERED_OUTSIDE_ZONE"));

    let college = worker(40).facts(|f| {
        f.education = EducationLevel::JuniorCollege as i32;
        f.pension_insurance_months = 12;
    });
    c.expect("talent-college", &college, Ok(P::TalentCollective));
    c.expect(
        "talent-college",
        &college.clone().facts(|f| f.pension_insurance_months = 11),
        Err("PENSION_INSURANCE"),
    );

    let secondary = worker(40).facts(|f| {
        f.education = EducationLevel::SeniorSecondary as i32;
        f.pension_insurance_months = 24;
    });
    c.expect("talent-secondary", &secondary, Ok(P::TalentCollective));
    c.expect(
        "talent-secondary",
        &secondary.clone().facts(|f| f.full_time_education = false),
        Err("FULL_TIME_EDUCATION"),
    );

    let owner = property(worker(55), PropertyKind::Residence).facts(|f| f.pension_insurance_months = 12);
    c.expect("residence-employment", &owner, Ok(P::OwnProperty));
    c.expect(
        "residence-employment",
        &owner.clone().facts(|f| f.pension_insurance_months = 11),
        Err("PENSION_INSURANCE"),
    );

    let encouraged_renter = jinan_worker(App::new(&outsider(55, true), encouraged.clone()))
        .docs(&[D::RentalRegistration, D::OwnerConsent])
        .facts(|f| f.pension_insurance_months = 24);
    c.expect("encouraged-residence", &encouraged_renter, Ok(P::RentalAddress));
    let in_optimized = encouraged_renter.clone().at(optimized.clone());
    c.expect("encouraged-residence", &in_optimized, Err("ZONE"));

    let changqing_worker = jinan_worker(App::new(&outsider(55, true), changqing.clone()))
        .docs(&[D::RentalRegistration, D::OwnerConsent])
        .facts(|f| f.pension_insurance_months = 1);
    c.expect("open-district-residence", &changqing_worker, Ok(P::RentalAddress));
    c.expect(
        "open-district-residence",
        &changqing_worker.clone().facts(|f| f.pension_insurance_months = 0),
        Err("PENSION_INSURANCE"),
    );

    city.registry
        .create_collective(&support::context(), HouseholdKind::CollectiveCommunity, "商河社区集体户", &shanghe)
        .expect("collective");
    let shanghe_worker = App::new(&outsider(55, true), shanghe.clone()).facts(|f| f.employed_in_city = true);
    c.expect("open-county-residence", &shanghe_worker, Ok(P::CommunityCollective));
    c.expect(
        "open-county-residence",
        &App::new(&outsider(55, true), shanghe.clone()),
        Err("ANY_OF"),
    );

    let family = address(&city.urban, "幸福路1号");
    let bride = App::new(&outsider(28, false), family.clone())
        .relation(&city.son, K::Spouse)
        .docs(&[D::MarriageCertificate, D::KinshipProof]);
    c.expect("relative-spouse", &bride, Ok(P::RelativeHousehold));
    let hasty = bride.clone().facts(|f| {
        f.previous_spouse_settlement = true;
        f.marriage_date = Some(popbase_proto::common::Date {
            year: 2026,
            month: 1,
            day: 1,
        });
    });
    c.expect("relative-spouse", &hasty, Err("MARRIAGE_DURATION"));

    let minor = App::new(&outsider(12, true), family.clone())
        .relation(&city.head, K::Parent)
        .docs(&[D::KinshipProof]);
    c.expect("relative-child", &minor, Ok(P::RelativeHousehold));
    let married_adult = App::new(&outsider(25, true), family.clone())
        .relation(&city.head, K::Parent)
        .docs(&[D::KinshipProof]);
    c.expect("relative-child", &married_adult, Err("ANY_OF"));

    // The son's recorded father is the head: another man claiming to be his father is contradicted.
    let father = App::new(&outsider(60, true), family.clone())
        .relation(&city.son, K::Child)
        .docs(&[D::KinshipProof]);
    c.expect("relative-parent", &father, Err("KINSHIP_VERIFIED"));
    let sponsor_daughter = city_daughter(&city);
    let mother_60 = App::new(&outsider(60, true), address(&city.urban, "幸福路1号"))
        .relation(&sponsor_daughter, K::Child)
        .docs(&[D::KinshipProof]);
    c.expect("relative-parent", &mother_60, Ok(P::RelativeHousehold));
    let mother_54 = App::new(&outsider(54, false), address(&city.urban, "幸福路1号"))
        .relation(&sponsor_daughter, K::Child)
        .docs(&[D::KinshipProof]);
    c.expect("relative-parent", &mother_54, Err("AGE_AT_LEAST"));

    let (orphan, parents_alive) = orphans(&city);
    let to_grandparents = App::new(&orphan, family.clone()).relation(&city.head, K::Grandparent);
    c.expect("relative-orphan", &to_grandparents, Ok(P::RelativeHousehold));
    let not_orphan = App::new(&parents_alive, family.clone()).relation(&city.head, K::Grandparent);
    c.expect("relative-orphan", &not_orphan, Err("PARENTS_DECEASED"));

    let adopted = App::new(&outsider(6, false), family.clone()).relation(&city.head, K::AdoptiveParent);
    c.expect(
        "relative-adoption",
        &adopted.clone().docs(&[D::AdoptionRegistration]),
        Ok(P::RelativeHousehold),
    );
    c.expect("relative-adoption", &adopted, Err("DOCUMENTS"));

    // 二(三): a settler's parents come at any age, in the open zones only.
    let shanghe_daughter = support::id_in("370126", 30, false);
    let shanghe_committee = shanghe.committee_code.clone();
    let shanghe_household = "37012600000088".to_string();
    city.add(
        popbase_proto::household::Household {
            household_id: shanghe_household.clone(),
            kind: HouseholdKind::Family as i32,
            head_id_number: shanghe_daughter.as_str().into(),
            address: Some(shanghe.clone()),
            status: HouseholdStatus::Active as i32,
            ..Default::default()
        },
        vec![person(
            &shanghe_daughter,
            &shanghe_household,
            &shanghe_committee,
            Relationship::Head,
        )],
    );
    let young_mother = App::new(&outsider(50, false), shanghe.clone())
        .relation(&shanghe_daughter, K::Child)
        .docs(&[D::KinshipProof]);
    c.expect("open-zone-parent", &young_mother, Ok(P::RelativeHousehold));
    c.expect(
        "open-zone-parent",
        &young_mother.clone().at(address(&city.urban, "幸福路1号")),
        Err("ZONE"),
    );
    c.assert_covered();
}

/// A married daughter registered in her own household at the urban committee,
/// with no parents recorded: a parent joining her rests on proof and age.
fn city_daughter(city: &City) -> popbase_domain::IdNumber {
    let id = support::id_in(&city.urban[..6], 35, false);
    let household = format!("{}00000077", &city.urban[..6]);
    city.add_lone_head(&id, &household, "幸福路1号");
    id
}

/// Two grandchildren of the head, registered in 长清区: one whose parents
/// (the head's son and his wife) are both deceased, one whose parents live.
fn orphans(city: &City) -> (popbase_domain::IdNumber, popbase_domain::IdNumber) {
    let county = "370113";
    let committee = support::committee_in(county, true);
    let household = format!("{county}00000099");
    let mut members = Vec::new();
    let mut make_child = |dead: bool| {
        let father = support::id_in(county, 36, true);
        let mother = support::id_in(county, 35, false);
        let child = support::id_in(county, 10, false);
        let mut f = person(&father, &household, &committee, Relationship::Son);
        f.father_id_number = city.head.as_str().into();
        let mut m = person(&mother, &household, &committee, Relationship::DaughterInLaw);
        if dead {
            f.status = RegistrationStatus::Deceased as i32;
            m.status = RegistrationStatus::Deceased as i32;
        }
        let mut c = person(&child, &household, &committee, Relationship::Granddaughter);
        c.father_id_number = father.as_str().into();
        c.mother_id_number = mother.as_str().into();
        c.marital_status = MaritalStatus::Unmarried as i32;
        c.military_service = MilitaryService::None as i32;
        members.extend([f, m, c]);
        child
    };
    let orphan = make_child(true);
    let with_parents = make_child(false);
    city.add(
        popbase_proto::household::Household {
            household_id: household,
            kind: HouseholdKind::Family as i32,
            address: Some(address(&committee, "幸福路1号")),
            status: HouseholdStatus::Active as i32,
            ..Default::default()
        },
        members,
    );
    (orphan, with_parents)
}

/// 本人、配偶及未成年子女: the spouse and minor children settle with the
/// applicant under a clause that brings the family, placed in the same new
/// household; an adult child, a contradicted child and a clause for the
/// applicant alone are refused member by member.
#[test]
fn a_family_settles_together_in_the_applicants_household() {
    let city = City::new("3703", "3703");
    let c = Checker::new(&city, "zibo-2021");
    let home = address(&city.urban, "新区9号楼1单元101室");
    let (husband, wife, son, daughter) = (outsider(36, true), outsider(34, false), outsider(9, true), outsider(20, false));
    let family = property(App::new(&husband, home.clone()), PropertyKind::Residence)
        .docs(&[D::MarriageCertificate, D::KinshipProof])
        .member(&wife, K::Spouse)
        .member(&son, K::Child);
    let evaluation = c.evaluate(&family);
    assert_eq!(evaluation.recommended_rule_id, "property");
    assert!(evaluation.family_eligible, "{:?}", evaluation.family);
    let placed: Vec<(Relationship, P)> = evaluation
        .family
        .iter()
        .map(|m| {
            let p = m.placement.as_ref().expect("placed");
            (p.relationship(), p.kind())
        })
        .collect();
    assert_eq!(
        placed,
        [(Relationship::Spouse, P::OwnProperty), (Relationship::Son, P::OwnProperty)]
    );
    assert!(evaluation.family.iter().all(|m| m.masked_id_number.contains("****")));
    let declared =
        |m: &popbase_proto::household::FamilyMemberEvaluation| m.checks.iter().find(|c| c.code == "KINSHIP_VERIFIED").map(|c| c.origin);
    assert_eq!(
        declared(&evaluation.family[0]),
        Some(popbase_proto::household::FactOrigin::Declared as i32),
        "no registry record: the marriage certificate proves it"
    );

    // An adult daughter is not a minor child: she applies on her own.
    let with_adult = family.clone().member(&daughter, K::Child);
    let evaluation = c.evaluate(&with_adult);
    assert!(!evaluation.family_eligible);
    let failed: Vec<&str> = evaluation.family[2]
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.code.as_str())
        .collect();
    assert_eq!(failed, ["MINOR"]);

    // The registry names another father for the city's son: contradicted.
    let claimed = property(App::new(&husband, home.clone()), PropertyKind::Residence)
        .docs(&[D::KinshipProof])
        .member(&city.son, K::Child);
    let evaluation = c.evaluate(&claimed);
    let kinship = evaluation.family[0]
        .checks
        .iter()
        .find(|c| c.code == "KINSHIP_VERIFIED")
        .expect("check");
    assert!(!kinship.passed, "{kinship:?}");

    // Talent settles the applicant alone (二(四)·人才 names no family).
    let talent = App::new(&husband, home)
        .facts(|f| f.education = EducationLevel::Bachelor as i32)
        .member(&wife, K::Spouse)
        .docs(&[D::MarriageCertificate]);
    let evaluation = c.evaluate(&talent);
    assert_eq!(evaluation.recommended_rule_id, "talent");
    let clause = evaluation.family[0]
        .checks
        .iter()
        .find(|c| c.code == "FAMILY_CLAUSE")
        .expect("clause");
    assert!(!clause.passed && !evaluation.family_eligible);
}
