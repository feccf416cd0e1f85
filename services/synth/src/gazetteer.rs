//! The generated city's standard addresses (标准地址), as a public-security
//! address base keeps them: each residents' committee owns door-number
//! ranges of named roads, each village its own numbered doors.
//!
//! Road names are unique in the city (as 地名管理 requires of a city's
//! roads), drawn from two syllable pools and a suffix; village "roads" are
//! the village's name, which may repeat between townships (王家村), as it
//! does in life. Derived from the city's division list alone (seeded by the
//! city code), so every generation of a city has the same gazetteer.

use popbase_domain::address::core_name;
use popbase_proto::household::StandardAddress;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::geography::Committee;

/// First syllables of road names.
const FIRST: [&str; 48] = [
    "人民",
    "和平",
    "建设",
    "新华",
    "中心",
    "滨河",
    "青年",
    "文化",
    "胜利",
    "工业",
    "华光",
    "共青团",
    "柳泉",
    "金晶",
    "商场",
    "联通",
    "杏园",
    "西五",
    "北京",
    "上海",
    "南京",
    "昌国",
    "鲁泰",
    "齐鲁",
    "太公",
    "桓公",
    "管仲",
    "稷下",
    "孝妇河",
    "淄河",
    "般阳",
    "长白山",
    "鲁山",
    "原山",
    "新村",
    "兴学",
    "兴业",
    "开发",
    "世纪",
    "安泰",
    "松龄",
    "留仙",
    "铁山",
    "洪山",
    "峨眉山",
    "泰山",
    "黄河",
    "华侨",
];
/// Second syllables (directions and qualifiers), may be empty.
const SECOND: [&str; 12] = ["", "东", "西", "南", "北", "中", "一", "二", "三", "新", "东一", "西二"];
const SUFFIX: [&str; 6] = ["路", "街", "大道", "巷", "大街", "胡同"];

/// Standard addresses of `committees` (the city's, in code order).
pub fn build(city_code: &str, committees: &[Committee]) -> Vec<StandardAddress> {
    let seed = city_code
        .bytes()
        .fold(0x6761_7a65_7474_6565_u64, |h, b| h.rotate_left(7) ^ u64::from(b));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut names: Vec<String> = FIRST
        .iter()
        .flat_map(|a| SECOND.iter().flat_map(move |b| SUFFIX.iter().map(move |c| format!("{a}{b}{c}"))))
        .collect();
    // A fixed shuffle: names handed out in a city-specific order.
    for i in (1..names.len()).rev() {
        let j = rng.random_range(0..=i);
        names.swap(i, j);
    }
    // A city with more roads than the pools hold numbers the rest: 人民十二路.
    let numbered = (1..).flat_map(|n: u32| FIRST.iter().map(move |a| format!("{a}{}路", numeral(n))));
    let mut next_name = names.into_iter().chain(numbered);
    let mut out = Vec::new();
    for committee in committees {
        if committee.urban {
            for _ in 0..rng.random_range(2..=3) {
                let Some(road) = next_name.next() else { break };
                out.push(StandardAddress {
                    committee_code: committee.code.clone(),
                    road,
                    from_number: 1,
                    to_number: rng.random_range(60..=240),
                });
            }
        } else {
            out.push(StandardAddress {
                committee_code: committee.code.clone(),
                road: village_road(&committee.name),
                from_number: 1,
                to_number: rng.random_range(80..=400),
            });
        }
    }
    out
}

/// 1..=99 in Chinese numerals (road names do not carry Arabic digits,
/// which would read as door numbers).
fn numeral(n: u32) -> String {
    const DIGITS: [&str; 10] = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九"];
    match (n / 10, n % 10) {
        (0, d) => DIGITS[d as usize].to_string(),
        (1, 0) => "十".to_string(),
        (1, d) => format!("十{}", DIGITS[d as usize]),
        (t, 0) => format!("{}十", DIGITS[(t % 10) as usize]),
        (t, d) => format!("{}十{}", DIGITS[(t % 10) as usize], DIGITS[d as usize]),
    }
}

/// A village's door numbers are written after its name: 王家村12号.
pub fn village_road(name: &str) -> String {
    format!("{}村", core_name(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geography::CityMap;

    #[test]
    fn roads_are_unique_in_the_city_and_the_gazetteer_is_stable() {
        let map = CityMap::load("3703").expect("map");
        let first = build("3703", &map.committees);
        assert_eq!(first, build("3703", &map.committees), "the same every time");
        let urban: Vec<&StandardAddress> = first
            .iter()
            .filter(|a| map.committees.iter().any(|c| c.code == a.committee_code && c.urban))
            .collect();
        let mut roads: Vec<&str> = urban.iter().map(|a| a.road.as_str()).collect();
        roads.sort();
        let before = roads.len();
        roads.dedup();
        assert_eq!(roads.len(), before, "an urban road belongs to one committee");
        assert!(map.committees.iter().all(|c| first.iter().any(|a| a.committee_code == c.code)));
    }
}
