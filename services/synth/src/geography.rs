//! The city's geography, from the embedded NBS division list.

use std::collections::BTreeMap;

use popbase_domain::{DivisionLevel, Divisions};
use rand::Rng;

use crate::GenerateError;

/// Relative population weight of an urban committee against a village one:
/// a residents' committee typically serves several thousand people, a
/// villagers' committee several hundred to a thousand.
const URBAN_WEIGHT: u64 = 6;
const RURAL_WEIGHT: u64 = 1;

#[derive(Debug, Clone)]
pub struct Committee {
    pub code: String,
    pub name: String,
    pub street: String,
    pub county: String,
    pub urban: bool,
    /// The committee's standard addresses: (road, highest door number).
    pub roads: Vec<(String, u32)>,
}

#[derive(Debug)]
pub struct CityMap {
    pub city_code: String,
    pub counties: Vec<String>,
    pub committees: Vec<Committee>,
    /// Street code -> indexes into `committees`.
    pub streets: BTreeMap<String, Vec<usize>>,
    cumulative: Vec<u64>,
    urban: Vec<usize>,
    shandong_elsewhere: Vec<String>,
    other_provinces: Vec<String>,
    /// The city's standard addresses (see [`crate::gazetteer`]).
    pub gazetteer: Vec<popbase_proto::household::StandardAddress>,
}

impl CityMap {
    /// The map of a prefecture city (4-digit code) with committee-level data.
    pub fn load(city_code: &str) -> Result<CityMap, GenerateError> {
        let divisions = Divisions::embedded();
        divisions
            .require(city_code, DivisionLevel::City)
            .map_err(|e| GenerateError::City(e.to_string()))?;
        let counties: Vec<String> = divisions
            .descendants_at(city_code, DivisionLevel::County)
            .into_iter()
            .map(|d| d.code.clone())
            .collect();
        let mut committees = Vec::new();
        let mut streets: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for county in &counties {
            for street in divisions.descendants_at(county, DivisionLevel::Street) {
                for committee in divisions.children(&street.code) {
                    let Some(kind) = committee.committee_kind() else { continue };
                    streets.entry(street.code.clone()).or_default().push(committees.len());
                    committees.push(Committee {
                        code: committee.code.clone(),
                        name: committee.name.clone(),
                        street: street.code.clone(),
                        county: county.clone(),
                        urban: kind.is_urban(),
                        roads: Vec::new(),
                    });
                }
            }
        }
        if committees.is_empty() {
            return Err(GenerateError::City(format!(
                "{city_code} has no committee-level divisions in the embedded list (only Shandong cities do)"
            )));
        }
        let gazetteer = crate::gazetteer::build(city_code, &committees);
        let by_code: std::collections::HashMap<String, usize> = committees.iter().enumerate().map(|(i, c)| (c.code.clone(), i)).collect();
        for address in &gazetteer {
            if let Some(&i) = by_code.get(&address.committee_code) {
                committees[i].roads.push((address.road.clone(), address.to_number));
            }
        }
        let mut cumulative = Vec::with_capacity(committees.len());
        let mut total = 0;
        for c in &committees {
            total += if c.urban { URBAN_WEIGHT } else { RURAL_WEIGHT };
            cumulative.push(total);
        }
        let urban = (0..committees.len()).filter(|&i| committees[i].urban).collect();
        let province = &city_code[..2];
        let mut shandong_elsewhere = Vec::new();
        let mut other_provinces = Vec::new();
        for p in province_list(divisions) {
            for county in divisions.descendants_at(&p.code, DivisionLevel::County) {
                if county.code.starts_with(city_code) {
                    continue;
                }
                if county.code.starts_with(province) {
                    shandong_elsewhere.push(county.code.clone());
                } else {
                    other_provinces.push(county.code.clone());
                }
            }
        }
        shandong_elsewhere.sort();
        shandong_elsewhere.dedup();
        other_provinces.sort();
        other_provinces.dedup();
        Ok(CityMap {
            city_code: city_code.to_string(),
            counties,
            committees,
            streets,
            cumulative,
            urban,
            shandong_elsewhere,
            other_provinces,
            gazetteer,
        })
    }

    /// The city's population weight: its committees' weights summed (a
    /// province shares its persons out by it).
    pub fn population_weight(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// A committee, weighted by typical population.
    pub fn pick_committee(&self, rng: &mut impl Rng) -> &Committee {
        let total = self.population_weight().max(1);
        let pick = rng.random_range(0..total);
        let index = self.cumulative.partition_point(|&c| c <= pick);
        &self.committees[index.min(self.committees.len() - 1)]
    }

    /// An urban committee (collective households, migrants' workplaces).
    pub fn pick_urban_committee(&self, rng: &mut impl Rng) -> &Committee {
        if self.urban.is_empty() {
            return self.pick_committee(rng);
        }
        &self.committees[self.urban[rng.random_range(0..self.urban.len())]]
    }

    pub fn pick_local_county<'a>(&'a self, rng: &mut impl Rng) -> &'a str {
        &self.counties[rng.random_range(0..self.counties.len())]
    }

    /// A county of the same province outside the city.
    pub fn pick_province_county<'a>(&'a self, rng: &mut impl Rng) -> &'a str {
        pick_or(&self.shandong_elsewhere, rng, &self.counties[0])
    }

    /// A county of another province.
    pub fn pick_other_province_county<'a>(&'a self, rng: &mut impl Rng) -> &'a str {
        pick_or(&self.other_provinces, rng, &self.counties[0])
    }
}

fn province_list(divisions: &Divisions) -> Vec<&popbase_domain::Division> {
    // Provinces have no parent; their codes are the 2-digit ones 11..=82.
    (11..=82)
        .filter_map(|p| divisions.get(&p.to_string()))
        .filter(|d| d.level == DivisionLevel::Province)
        .collect()
}

fn pick_or<'a>(list: &'a [String], rng: &mut impl Rng, fallback: &'a str) -> &'a str {
    if list.is_empty() {
        fallback
    } else {
        &list[rng.random_range(0..list.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn zibo_map_has_all_committees_and_outside_counties() {
        let map = CityMap::load("3703").expect("Zibo");
        assert_eq!(map.counties.len(), 8);
        assert_eq!(map.committees.len(), 2931);
        assert_eq!(map.streets.len(), 88);
        assert!(map.shandong_elsewhere.iter().all(|c| c.starts_with("37") && !c.starts_with("3703")));
        assert!(map.other_provinces.iter().all(|c| !c.starts_with("37")));
        assert!(map.other_provinces.len() > 2000);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let urban = (0..10_000).filter(|_| map.pick_committee(&mut rng).urban).count();
        // Urban committees are a minority of codes but weighted 6:1.
        assert!(urban > 3000, "urban picks {urban}");
    }

    #[test]
    fn cities_without_committee_data_are_refused() {
        assert!(matches!(CityMap::load("1101"), Err(GenerateError::City(_))));
        assert!(matches!(CityMap::load("9999"), Err(GenerateError::City(_))));
    }
}
