//! A province: every one of its cities with committee-level data (in the
//! embedded list, Shandong's 16), generated one after another into the same
//! stores, for the one-node province run (docs/benchmarks.md).
//!
//! The persons are shared out by the cities' population weights (the same
//! committee weights a city uses to place its households), so a city's share
//! is where the generator would put people anyway. The cities must not
//! collide in the stores: household and permit numbers already carry county
//! and city codes; ID numbers come from one allocator shared by every city
//! ([`CityGenerator::run_sharing`]); feed record numbers get a range per city
//! ([`RECORDS_PER_CITY`]).
//!
//! What a province of separately generated cities does not model: people
//! moving between its cities. A city's migrants come from other provinces
//! only ([`crate::migrants::MigrantBuilder::outside_province_only`]); one
//! registered in a Shandong county would have to be in that county's
//! registry too, and a birth there, checked free against the registry
//! alone, could take their number.

use crate::generator::{CityGenerator, CityParams, GenerateError};
use crate::geography::CityMap;
use popbase_domain::{DivisionLevel, Divisions};

/// Feed record numbers each city may use: a city's records (about 2.5 per
/// person) stay far below it up to the 50 million persons a city may have.
pub const RECORDS_PER_CITY: u64 = 200_000_000;

/// The generators of `province`'s cities, `persons` shared out by weight
/// (largest remainders; each city gets at least one person). City `i`
/// generates with seed `seed + i`, so each is deterministic on its own.
pub fn plan(province: &str, persons: u64, seed: u64) -> Result<Vec<CityGenerator>, GenerateError> {
    let divisions = Divisions::embedded();
    divisions
        .require(province, DivisionLevel::Province)
        .map_err(|e| GenerateError::City(e.to_string()))?;
    let maps: Vec<CityMap> = divisions
        .descendants_at(province, DivisionLevel::City)
        .into_iter()
        .filter_map(|city| CityMap::load(&city.code).ok())
        .collect();
    if maps.is_empty() {
        return Err(GenerateError::City(format!(
            "{province} has no city with committee-level divisions in the embedded list (only Shandong does)"
        )));
    }
    if persons < maps.len() as u64 {
        return Err(GenerateError::Params(format!(
            "a province of {} cities needs at least as many persons",
            maps.len()
        )));
    }
    let weights: Vec<u64> = maps.iter().map(CityMap::population_weight).collect();
    let shares = share_out(persons, &weights);
    maps.into_iter()
        .zip(shares)
        .enumerate()
        .map(|(i, (map, persons))| {
            let mut params = CityParams::new(&map.city_code, persons, seed.wrapping_add(i as u64));
            params.first_record = 1 + (i as u64 + 1) * RECORDS_PER_CITY;
            params.in_province = true;
            CityGenerator::with_map(params, map)
        })
        .collect()
}

/// `total` shared out in proportion to `weights`: one each first, the
/// rest by weight (largest remainders). Sums to `total` when `total` is at
/// least the number of weights (the caller checks).
fn share_out(total: u64, weights: &[u64]) -> Vec<u64> {
    let rest = total.saturating_sub(weights.len() as u64);
    let sum: u128 = weights.iter().map(|&w| u128::from(w.max(1))).sum();
    let exact: Vec<(u64, u128)> = weights
        .iter()
        .map(|&w| {
            let scaled = u128::from(rest) * u128::from(w.max(1));
            ((scaled / sum) as u64, scaled % sum)
        })
        .collect();
    let mut shares: Vec<u64> = exact.iter().map(|(share, _)| share + 1).collect();
    let short = rest - exact.iter().map(|(share, _)| share).sum::<u64>();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| exact[b].1.cmp(&exact[a].1).then(a.cmp(&b)));
    for &i in order.iter().take(short as usize) {
        shares[i] += 1;
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_and_follow_the_weights() {
        assert_eq!(share_out(10, &[1, 1]), [5, 5]);
        assert_eq!(share_out(10, &[3, 1]), [7, 3]);
        assert_eq!(share_out(3, &[1000, 1, 1]), [1, 1, 1], "every city gets someone");
        assert_eq!(share_out(101_000_000, &[5, 3, 2]), [50_500_000, 30_300_000, 20_200_000]);
        let mut skewed = vec![1_000_000];
        skewed.extend([1; 15]);
        for total in [16, 17, 30, 1_000, 1_000_003] {
            for weights in [&skewed[..], &[1, 1, 1], &[7, 0, 3], &[u64::MAX / 4, 1]] {
                let shares = share_out(total, weights);
                assert_eq!(shares.iter().sum::<u64>(), total, "{total} over {weights:?}: {shares:?}");
                assert!(shares.iter().all(|&s| s >= 1), "{total} over {weights:?}: {shares:?}");
            }
        }
    }

    #[test]
    fn shandong_is_sixteen_cities_sharing_the_persons() {
        let cities = plan("37", 1_600_000, 7).expect("Shandong");
        assert_eq!(cities.len(), 16);
        let persons: Vec<u64> = cities.iter().map(|c| c.params().persons).collect();
        assert_eq!(persons.iter().sum::<u64>(), 1_600_000);
        assert!(persons.iter().all(|&p| p > 10_000), "{persons:?}");
        let firsts: Vec<u64> = cities.iter().map(|c| c.params().first_record).collect();
        assert!(firsts.windows(2).all(|w| w[1] - w[0] == RECORDS_PER_CITY));
        assert!(
            matches!(plan("11", 1000, 1), Err(GenerateError::City(_))),
            "no committee data for Beijing"
        );
        assert!(matches!(plan("37", 15, 1), Err(GenerateError::Params(_))));
    }
}
