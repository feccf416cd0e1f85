//! Written addresses taken apart: what a clerk types for an employer
//! ("淄博市张店区车站街道新华社区华光路１２号3号楼", "张店华光路12号",
//! "山东省济南市历下区经十路100号") split into the division names it
//! mentions, the road and the door number, so it can be matched against
//! the city's standard addresses (标准地址).
//!
//! The tokenizer works on the NBS names of the divisions (full names and
//! their cores: 张店区 → 张店, 车站街道 → 车站, 新华社区居委会 → 新华),
//! the road suffixes of Chinese place names (路, 街, 大道, 巷, …) and door
//! numbers (N号), after folding full-width digits and letters to ASCII.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::divisions::{DivisionLevel, Divisions};

/// Road-name endings, longest first (大街 before 街).
const ROAD_SUFFIXES: [&str; 9] = ["大道", "大街", "胡同", "路", "街", "巷", "道", "线", "里"];

/// A written address, folded and taken apart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedAddress {
    /// Full-width characters folded, spaces and punctuation removed.
    pub normalized: String,
    /// Divisions of the city the text names (county, street, committee), by code.
    pub named: Vec<String>,
    /// Some division of another city or province is named, and none of this city's.
    pub elsewhere: bool,
    /// The road (or village) the door number belongs to, e.g. "华光路".
    pub road: Option<String>,
    /// The door number (门牌号), e.g. 12 for "12号".
    pub number: Option<u32>,
}

/// Folds full-width ASCII and the ideographic space, and drops spaces and
/// punctuation a clerk may type between parts.
pub fn normalize(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .filter(|c| !c.is_whitespace() && !matches!(c, ',' | '，' | '、' | '。' | '-' | '—' | '(' | ')' | '（' | '）' | '#'))
        .collect()
}

/// A division's name without its level's suffix: 张店区 → 张店,
/// 车站街道 → 车站, 新华社区居民委员会 → 新华. At least two characters stay.
pub fn core_name(name: &str) -> &str {
    let mut core = name;
    for suffix in [
        "居民委员会",
        "村民委员会",
        "社区居委会",
        "居委会",
        "村委会",
        "社区",
        "街道办事处",
        "街道",
        "自治县",
        "新区",
        "区",
        "县",
        "市",
        "镇",
        "乡",
        "村",
    ] {
        if let Some(stripped) = core.strip_suffix(suffix)
            && stripped.chars().count() >= 2
        {
            core = stripped;
        }
    }
    core
}

/// How a committee is written: its full name, or its core with 社区, 村 or 居委会.
fn committee_forms(name: &str) -> Vec<String> {
    let core = core_name(name);
    vec![
        name.to_string(),
        format!("{core}社区"),
        format!("{core}居委会"),
        format!("{core}村"),
    ]
}

/// Removes the first occurrence of `name` (full, else its core) from
/// `text`; whether it was there.
fn take(text: &mut String, name: &str) -> bool {
    for candidate in [name, core_name(name)] {
        if candidate.chars().count() >= 2
            && let Some(at) = text.find(candidate)
        {
            text.replace_range(at..at + candidate.len(), "");
            return true;
        }
    }
    false
}

/// Removes the first occurrence of exactly `name`; whether it was there.
fn take_exact(text: &mut String, name: &str) -> bool {
    match text.find(name) {
        Some(at) => {
            text.replace_range(at..at + name.len(), "");
            true
        }
        None => false,
    }
}

/// The door number at the start of `rest`: digits followed by 号 (or the end).
fn door_number(rest: &str) -> Option<u32> {
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    let after = &rest[digits.len()..];
    (after.is_empty() || after.starts_with('号') || after.starts_with('弄')).then(|| digits.parse().ok())?
}

/// The road and door number in what is left once division names are gone:
/// the run of Han characters ending in a road suffix just before "N号"
/// (or a village name before "N号").
fn road_and_number(rest: &str) -> (Option<String>, Option<u32>) {
    let chars: Vec<(usize, char)> = rest.char_indices().collect();
    for (i, &(at, c)) in chars.iter().enumerate() {
        if !c.is_ascii_digit() || (i > 0 && chars[i - 1].1.is_ascii_digit()) {
            continue;
        }
        let Some(number) = door_number(&rest[at..]) else { continue };
        let before = &rest[..at];
        let han: String = before
            .chars()
            .rev()
            .take_while(|c| !c.is_ascii() && *c != '号')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if han.chars().count() < 2 {
            continue;
        }
        // The road is the shortest tail that ends the Han run with a suffix
        // and leaves at least two characters of name; else the whole run
        // (a village: 王家村 12号 written 王家12号).
        let road = ROAD_SUFFIXES
            .iter()
            .find_map(|suffix| han.strip_suffix(suffix).map(|_| han.clone()))
            .unwrap_or(han);
        return (Some(road), Some(number));
    }
    (None, None)
}

/// The names a city's addresses are matched against, built once per city
/// (the division tree does not change while a process runs): its counties,
/// the forms of every street and committee, and the full names of every
/// place outside it.
struct CityNames {
    province: Option<String>,
    city: String,
    /// (code, full name, core).
    counties: Vec<(String, String, String)>,
    /// (code, the forms it is written in): streets, then committees.
    below: Vec<(String, Vec<String>)>,
    elsewhere: Vec<String>,
}

fn city_names(city: &str, divisions: &Divisions) -> Option<Arc<CityNames>> {
    type Cache = Mutex<HashMap<(usize, String), Arc<CityNames>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let key = (std::ptr::from_ref(divisions) as usize, city.to_string());
    let cache = CACHE.get_or_init(Cache::default);
    if let Some(names) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Some(names.clone());
    }
    let city_division = divisions.get(city)?;
    let names = Arc::new(CityNames {
        province: city.get(..2).and_then(|p| divisions.get(p)).map(|p| p.name.clone()),
        city: city_division.name.clone(),
        counties: divisions
            .descendants_at(city, DivisionLevel::County)
            .into_iter()
            .map(|d| (d.code.clone(), d.name.clone(), core_name(&d.name).to_string()))
            .collect(),
        below: divisions
            .descendants_at(city, DivisionLevel::Street)
            .into_iter()
            .map(|d| (d.code.clone(), vec![d.name.clone()]))
            .chain(
                divisions
                    .descendants_at(city, DivisionLevel::Committee)
                    .into_iter()
                    .map(|d| (d.code.clone(), committee_forms(&d.name))),
            )
            .collect(),
        elsewhere: divisions.names_outside(city),
    });
    cache.lock().unwrap_or_else(|p| p.into_inner()).insert(key, names.clone());
    Some(names)
}

/// Takes `text` apart against the divisions of `city` (a 4-digit code).
pub fn parse(text: &str, city: &str, divisions: &Divisions) -> ParsedAddress {
    let normalized = normalize(text);
    let mut rest = normalized.clone();
    let Some(names) = city_names(city, divisions) else {
        return ParsedAddress {
            normalized,
            ..Default::default()
        };
    };
    if let Some(province) = &names.province {
        take(&mut rest, province);
    }
    let mut named = Vec::new();
    let named_city = take(&mut rest, &names.city);
    for (code, full, core) in &names.counties {
        // A county by its full name anywhere, by its core (张店, 淄川) only
        // first: a core inside a word is another name (小周村 is no 周村区).
        if take_exact(&mut rest, full) || (rest.starts_with(core.as_str()) && take_exact(&mut rest, core)) {
            named.push(code.clone());
        }
    }
    // Another city or county named, and not this city or any of its
    // counties: the address is elsewhere, whatever road it names.
    let elsewhere = !named_city && named.is_empty() && names.elsewhere.iter().any(|n| normalized.contains(n.as_str()));
    // Streets by their full names (车站街道, 南定镇); committees as a clerk
    // writes them (新华社区, 王家村, or the full name), never by a bare core
    // that a road name may contain (新华路). A name inside a longer one
    // found at the same place is not named (东峪村 in 西东峪村); a name
    // several villages share names them all.
    let mut found: Vec<(usize, usize, &str)> = Vec::new();
    for (code, forms) in &names.below {
        if let Some((at, form)) = forms.iter().find_map(|f| rest.find(f.as_str()).map(|at| (at, f))) {
            found.push((at, at + form.len(), code.as_str()));
        }
    }
    let kept: Vec<(usize, usize, &str)> = found
        .iter()
        .filter(|(s, e, _)| !found.iter().any(|(s2, e2, _)| s2 <= s && e <= e2 && e2 - s2 > e - s))
        .copied()
        .collect();
    let mut spans: Vec<(usize, usize)> = kept.iter().map(|(s, e, _)| (*s, *e)).collect();
    named.extend(kept.iter().map(|(_, _, code)| code.to_string()));
    spans.sort();
    spans.dedup();
    for (s, e) in spans.into_iter().rev() {
        if rest.is_char_boundary(s) && rest.is_char_boundary(e) && e <= rest.len() {
            rest.replace_range(s..e, "");
        }
    }
    let (road, number) = road_and_number(&rest);
    ParsedAddress {
        normalized,
        named,
        elsewhere,
        road,
        number,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_digits_spaces_and_punctuation_fold() {
        assert_eq!(normalize("华光路　１２号（3号楼）"), "华光路12号3号楼");
        assert_eq!(normalize("ＡＢ栋 ５０１"), "AB栋501");
    }

    #[test]
    fn cores_keep_two_characters() {
        assert_eq!(core_name("张店区"), "张店");
        assert_eq!(core_name("车站街道"), "车站");
        assert_eq!(core_name("新华社区居委会"), "新华");
        assert_eq!(core_name("淄博市"), "淄博");
        assert_eq!(core_name("东区"), "东区", "one character would be too little");
    }

    /// Random strings of the pieces addresses are made of (multi-byte
    /// characters next to the byte positions the parser cuts at): no panic.
    #[test]
    fn any_text_parses_without_panicking() {
        const PIECES: [&str; 16] = [
            "淄博市",
            "张店区",
            "张店",
            "车站街道",
            "新华社区",
            "王家村",
            "华光路",
            "１２",
            "12",
            "号",
            "楼",
            "😀",
            "\u{0}",
            " ",
            "东峪村",
            "西东峪村",
        ];
        let divisions = Divisions::embedded();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..1_000 {
            let mut text = String::new();
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            for k in 0..(state % 9) {
                text.push_str(PIECES[((state >> (k * 4)) % PIECES.len() as u64) as usize]);
            }
            let parsed = parse(&text, "3703", divisions);
            assert!(parsed.named.iter().all(|code| code.starts_with("3703")), "{text}");
        }
    }

    #[test]
    fn the_road_and_door_number_come_out() {
        assert_eq!(road_and_number("华光路12号3号楼2单元501室"), (Some("华光路".into()), Some(12)));
        assert_eq!(road_and_number("人民西路9号"), (Some("人民西路".into()), Some(9)));
        assert_eq!(road_and_number("王家12号"), (Some("王家".into()), Some(12)));
        assert_eq!(road_and_number("某某大厦"), (None, None));
    }
}
