//! The address benchmark (issue: a real address gazetteer): written
//! addresses generated from Zibo's standard addresses the way clerks write
//! them (levels omitted, abbreviations, full-width digits, a typo in the
//! road, flat numbers after the door) and addresses in other cities, all
//! located by the registry. At least 99 % must resolve to the right
//! committee and no address elsewhere may resolve to any.
//! `cargo test -p popbase-synth --test gazetteer -- --nocapture` prints
//! the figures docs/benchmarks.md records.

use popbase_domain::address::core_name;
use popbase_domain::{DivisionLevel, Divisions};
use popbase_household::Registry;
use popbase_household::gazetteer::Located;
use popbase_storage::{Store, StoreOptions};
use popbase_synth::geography::CityMap;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// In-city written addresses, and addresses elsewhere.
const IN_CITY: usize = 2_400;
const ELSEWHERE: usize = 300;

/// Characters a typo puts in a road name (none of the directions or
/// numerals road names are built from).
const TYPOS: [char; 12] = ['氏', '兴', '光', '华', '阳', '安', '平', '宁', '康', '泉', '明', '园'];

fn full_width(digits: &str) -> String {
    digits
        .chars()
        .map(|c| {
            if c.is_ascii_digit() {
                char::from_u32(c as u32 + 0xFEE0).unwrap_or(c)
            } else {
                c
            }
        })
        .collect()
}

/// One written form of door `number` of `road` in `committee`.
fn written(rng: &mut ChaCha8Rng, map: &CityMap, divisions: &Divisions, committee: usize, road: &str, number: u32) -> String {
    let c = &map.committees[committee];
    let street = divisions.get(&c.street).map(|d| d.name.clone()).unwrap_or_default();
    let county = divisions.get(&c.county).map(|d| d.name.clone()).unwrap_or_default();
    let mut parts: Vec<String> = Vec::new();
    if rng.random_bool(0.3) {
        parts.push("山东省".into());
    }
    if rng.random_bool(0.6) {
        parts.push("淄博市".into());
    }
    match rng.random_range(0..10) {
        0..4 => parts.push(county.clone()),
        4..6 => parts.push(core_name(&county).to_string()),
        _ => {}
    }
    // A village address always names its township: village names repeat.
    if !c.urban || rng.random_bool(0.4) {
        parts.push(street);
    }
    let mut road = road.to_string();
    if c.urban {
        if rng.random_bool(0.3) {
            parts.push(format!("{}社区", core_name(&c.name)));
        }
        if rng.random_bool(0.1) {
            // A typo in the road's first characters.
            let mut chars: Vec<char> = road.chars().collect();
            let at = rng.random_range(0..2);
            chars[at] = TYPOS[rng.random_range(0..TYPOS.len())];
            road = chars.into_iter().collect();
        }
    }
    parts.push(road);
    let number = number.to_string();
    parts.push(if rng.random_bool(0.2) { full_width(&number) } else { number });
    parts.push("号".into());
    if c.urban && rng.random_bool(0.5) {
        parts.push(format!(
            "{}号楼{}单元{}室",
            rng.random_range(1..20),
            rng.random_range(1..5),
            rng.random_range(101..1802)
        ));
    }
    let separator = if rng.random_bool(0.1) { " " } else { "" };
    parts.join(separator)
}

#[test]
fn written_addresses_resolve_to_their_committee_and_none_elsewhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::new(Store::open(dir.path(), popbase_household::tables::SCHEMA, StoreOptions::default()).expect("store"));
    let map = CityMap::load("3703").expect("map");
    registry.import_standard_addresses(&map.gazetteer).expect("import");
    let divisions = Divisions::embedded();
    let by_code: std::collections::HashMap<&str, usize> = map.committees.iter().enumerate().map(|(i, c)| (c.code.as_str(), i)).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(2026);

    let (mut right, mut ambiguous, mut wrong, mut missed) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for _ in 0..IN_CITY {
        let standard = &map.gazetteer[rng.random_range(0..map.gazetteer.len())];
        let number = rng.random_range(standard.from_number..=standard.to_number);
        let committee = by_code[standard.committee_code.as_str()];
        let text = written(&mut rng, &map, divisions, committee, &standard.road, number);
        match registry.locate_address(&text, "3703").expect("locate").1 {
            Located::Resolved(code) if code == standard.committee_code => right += 1,
            Located::Resolved(_) => {
                wrong += 1;
                failures.push(text);
            }
            Located::Ambiguous(_) => {
                ambiguous += 1;
                failures.push(text);
            }
            Located::NotFound(_) => {
                missed += 1;
                failures.push(text);
            }
        }
    }

    // Elsewhere: another Shandong city's county (and its streets), with a
    // road that does exist in Zibo.
    let others: Vec<&popbase_domain::Division> = divisions
        .descendants_at("37", DivisionLevel::County)
        .into_iter()
        .filter(|d| !d.code.starts_with("3703"))
        .collect();
    let mut resolved_elsewhere = Vec::new();
    for _ in 0..ELSEWHERE {
        let county = others[rng.random_range(0..others.len())];
        let city = divisions
            .ancestor_at(&county.code, DivisionLevel::City)
            .map(|d| d.name.clone())
            .unwrap_or_default();
        let streets: Vec<_> = divisions.children(&county.code).collect();
        let street = streets
            .get(rng.random_range(0..streets.len().max(1)))
            .map(|d| d.name.clone())
            .unwrap_or_default();
        let road = &map.gazetteer[rng.random_range(0..map.gazetteer.len())].road;
        let city_part = if rng.random_bool(0.5) { city } else { String::new() };
        let text = format!("{city_part}{}{street}{road}{}号", county.name, rng.random_range(1..60));
        if let Located::Resolved(code) = registry.locate_address(&text, "3703").expect("locate").1 {
            resolved_elsewhere.push((text, code));
        }
    }

    let accuracy = right as f64 / IN_CITY as f64;
    eprintln!(
        "address benchmark: {IN_CITY} in Zibo: {right} right ({:.2} %), {ambiguous} ambiguous, {wrong} wrong, {missed} not found; \
         {ELSEWHERE} elsewhere: {} resolved",
        accuracy * 100.0,
        resolved_elsewhere.len()
    );
    for text in failures.iter().take(10) {
        eprintln!("  not right: {text}");
    }
    assert!(accuracy >= 0.99, "{:.2} % right", accuracy * 100.0);
    assert_eq!(wrong, 0, "a wrong committee is worse than none: {failures:?}");
    assert!(resolved_elsewhere.is_empty(), "{resolved_elsewhere:?}");
}
