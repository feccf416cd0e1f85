//! Administrative divisions (行政区划), province down to residents'/villagers' committee.
//!
//! The NBS 2023 code list is compiled into the binary (`data/divisions/`), so
//! every component validates codes the same way without a file to deploy.
//! Codes are stored as their decimal digits; the number of digits is the level:
//! 2 province, 4 prefecture city, 6 county, 9 street/township, 12 committee.

use std::collections::HashMap;
use std::sync::OnceLock;

use thiserror::Error;

const CHINA_COUNTIES_CSV: &str = include_str!("../../../data/divisions/divisions-china-counties.csv");
const SHANDONG_STREETS_CSV: &str = include_str!("../../../data/divisions/divisions-shandong-streets-villages.csv");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DivisionLevel {
    Province,
    City,
    County,
    Street,
    Committee,
}

impl DivisionLevel {
    /// The level a code of `digits` characters denotes, if any.
    pub fn from_code_len(digits: usize) -> Option<Self> {
        Some(match digits {
            2 => Self::Province,
            4 => Self::City,
            6 => Self::County,
            9 => Self::Street,
            12 => Self::Committee,
            _ => return None,
        })
    }
}

/// The kind of a committee, read off the last three digits of its code (NBS rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitteeKind {
    /// 001-199: residents' committee (居民委员会), urban.
    Residents,
    /// 200-399: villagers' committee (村民委员会), rural.
    Villagers,
    /// 400-599: a body treated like a residents' committee, urban.
    ResidentsLike,
}

impl CommitteeKind {
    /// Classifies a 12-digit committee code; `None` for other codes or unused ranges.
    pub fn of_code(code: &str) -> Option<Self> {
        if code.len() != 12 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let suffix: u16 = code[9..].parse().ok()?;
        match suffix {
            1..=199 => Some(Self::Residents),
            200..=399 => Some(Self::Villagers),
            400..=599 => Some(Self::ResidentsLike),
            _ => None,
        }
    }

    /// Urban for the purpose of rural-to-urban transfer statistics.
    pub fn is_urban(self) -> bool {
        !matches!(self, Self::Villagers)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Division {
    pub code: String,
    pub name: String,
    pub level: DivisionLevel,
    pub parent: Option<String>,
}

impl Division {
    pub fn committee_kind(&self) -> Option<CommitteeKind> {
        CommitteeKind::of_code(&self.code)
    }
}

/// Why a division code was refused. Codes are public data, so messages may name them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DivisionError {
    /// The caller's text is not repeated (it may be anything, of any
    /// length): only how many characters it had.
    #[error("is not a division code (2, 4, 6, 9 or 12 digits; {0} characters given)")]
    Malformed(usize),
    #[error("unknown division code {0}")]
    Unknown(String),
    #[error("{code} is a {actual:?}, expected a {expected:?}")]
    WrongLevel {
        code: String,
        expected: DivisionLevel,
        actual: DivisionLevel,
    },
    #[error("division file line {line}: {reason}")]
    BadFile { line: usize, reason: String },
}

/// The division tree, indexed by code and by parent.
#[derive(Debug, Default)]
pub struct Divisions {
    by_code: HashMap<String, Division>,
    children: HashMap<String, Vec<String>>,
}

impl Divisions {
    /// The NBS 2023 list compiled into the binary, parsed once per process.
    pub fn embedded() -> &'static Divisions {
        static EMBEDDED: OnceLock<Divisions> = OnceLock::new();
        EMBEDDED.get_or_init(|| {
            let mut divisions = Divisions::default();
            // The shipped files are checked by the tests below; a failure here is a build defect.
            for csv in [CHINA_COUNTIES_CSV, SHANDONG_STREETS_CSV] {
                if let Err(err) = divisions.load_csv(csv) {
                    panic!("embedded division list is corrupt: {err}");
                }
            }
            divisions
        })
    }

    /// Adds the rows of a `code,name,level,parent` CSV (header line first).
    pub fn load_csv(&mut self, csv: &str) -> Result<(), DivisionError> {
        for (index, line) in csv.lines().enumerate().skip(1) {
            let line_no = index + 1;
            if line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split(',').collect();
            let [code, name, _level, parent] = fields[..] else {
                return Err(DivisionError::BadFile {
                    line: line_no,
                    reason: format!("expected 4 fields, got {}", fields.len()),
                });
            };
            let level = DivisionLevel::from_code_len(code.len())
                .filter(|_| code.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| DivisionError::BadFile {
                    line: line_no,
                    reason: format!("bad code '{code}'"),
                })?;
            let parent = (!parent.is_empty()).then(|| parent.to_string());
            if let Some(parent) = &parent {
                self.children.entry(parent.clone()).or_default().push(code.to_string());
            }
            self.by_code.insert(
                code.to_string(),
                Division {
                    code: code.to_string(),
                    name: name.to_string(),
                    level,
                    parent,
                },
            );
        }
        for list in self.children.values_mut() {
            list.sort();
        }
        Ok(())
    }

    pub fn get(&self, code: &str) -> Option<&Division> {
        self.by_code.get(code)
    }

    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    /// Looks a code up and checks it is of the `expected` level: the edge validation
    /// for every request field that names a division.
    pub fn require(&self, code: &str, expected: DivisionLevel) -> Result<&Division, DivisionError> {
        let level = DivisionLevel::from_code_len(code.len())
            .filter(|_| code.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| DivisionError::Malformed(code.chars().count()))?;
        if level != expected {
            return Err(DivisionError::WrongLevel {
                code: code.to_string(),
                expected,
                actual: level,
            });
        }
        self.get(code).ok_or_else(|| DivisionError::Unknown(code.to_string()))
    }

    /// Direct children of a division, in code order.
    pub fn children(&self, code: &str) -> impl Iterator<Item = &Division> {
        self.children.get(code).into_iter().flatten().filter_map(|c| self.by_code.get(c))
    }

    /// Every descendant of `code` at `level`, in code order.
    pub fn descendants_at(&self, code: &str, level: DivisionLevel) -> Vec<&Division> {
        let mut out = Vec::new();
        let mut stack = vec![code];
        while let Some(current) = stack.pop() {
            for child in self.children(current) {
                if child.level == level {
                    out.push(child);
                } else if child.level < level {
                    stack.push(&child.code);
                }
            }
        }
        out.sort_by(|a, b| a.code.cmp(&b.code));
        out
    }

    /// The chain from the province down to `code` itself.
    pub fn path(&self, code: &str) -> Vec<&Division> {
        let mut chain = Vec::new();
        let mut next = self.get(code);
        while let Some(division) = next {
            chain.push(division);
            next = division.parent.as_deref().and_then(|p| self.get(p));
        }
        chain.reverse();
        chain
    }

    /// The ancestor of `code` at `level` (or the division itself at that level).
    pub fn ancestor_at(&self, code: &str, level: DivisionLevel) -> Option<&Division> {
        self.path(code).into_iter().find(|d| d.level == level)
    }

    /// The full names of every province, city and county other than `city`
    /// (a 4-digit code) and its own province: an address naming one lies
    /// elsewhere.
    pub fn names_outside(&self, city: &str) -> Vec<String> {
        self.by_code
            .values()
            .filter(|d| {
                d.level <= DivisionLevel::County
                    && !d.code.starts_with(city)
                    && !city.starts_with(d.code.as_str())
                    && d.name.chars().count() >= 2
            })
            .map(|d| d.name.clone())
            .collect()
    }

    /// Whether a county code exists in the current list. An ID number whose prefix
    /// is unknown may still be valid (abolished counties), so callers warn, not reject.
    pub fn knows_county(&self, code: &str) -> bool {
        self.get(code).is_some_and(|d| d.level == DivisionLevel::County)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_list_has_every_level() {
        let d = Divisions::embedded();
        assert_eq!(d.get("37").map(|x| x.name.as_str()), Some("山东省"));
        assert_eq!(d.get("3703").map(|x| x.level), Some(DivisionLevel::City));
        assert_eq!(d.get("370302").map(|x| x.name.as_str()), Some("淄川区"));
        // Zibo: 8 county-level divisions, 88 streets/towns, 2,931 committees (data README).
        assert_eq!(d.descendants_at("3703", DivisionLevel::County).len(), 8);
        assert_eq!(d.descendants_at("3703", DivisionLevel::Street).len(), 88);
        assert_eq!(d.descendants_at("3703", DivisionLevel::Committee).len(), 2931);
    }

    #[test]
    fn committee_kind_follows_code_suffix() {
        assert_eq!(CommitteeKind::of_code("370302001001"), Some(CommitteeKind::Residents));
        assert_eq!(CommitteeKind::of_code("370302001201"), Some(CommitteeKind::Villagers));
        assert_eq!(CommitteeKind::of_code("370302001401"), Some(CommitteeKind::ResidentsLike));
        assert_eq!(CommitteeKind::of_code("370302001000"), None);
        assert_eq!(CommitteeKind::of_code("370302001"), None);
        assert!(CommitteeKind::Residents.is_urban());
        assert!(CommitteeKind::ResidentsLike.is_urban());
        assert!(!CommitteeKind::Villagers.is_urban());
        // Counts across Shandong, as stated in the data README.
        let d = Divisions::embedded();
        let kinds = d
            .descendants_at("37", DivisionLevel::Committee)
            .into_iter()
            .filter_map(|c| c.committee_kind())
            .fold([0usize; 3], |mut acc, k| {
                acc[k as usize] += 1;
                acc
            });
        assert_eq!(kinds, [6977, 54974, 123]);
    }

    #[test]
    fn path_and_ancestors_walk_up_the_tree() {
        let d = Divisions::embedded();
        let committee = d
            .descendants_at("370302", DivisionLevel::Committee)
            .into_iter()
            .next()
            .expect("Zichuan has committees");
        let path: Vec<DivisionLevel> = d.path(&committee.code).iter().map(|x| x.level).collect();
        assert_eq!(
            path,
            vec![
                DivisionLevel::Province,
                DivisionLevel::City,
                DivisionLevel::County,
                DivisionLevel::Street,
                DivisionLevel::Committee
            ]
        );
        assert_eq!(
            d.ancestor_at(&committee.code, DivisionLevel::County).map(|x| x.code.as_str()),
            Some("370302")
        );
    }

    #[test]
    fn require_names_the_problem() {
        let d = Divisions::embedded();
        assert!(matches!(
            d.require("3703x", DivisionLevel::County),
            Err(DivisionError::Malformed(_))
        ));
        assert!(matches!(
            d.require("370302", DivisionLevel::Committee),
            Err(DivisionError::WrongLevel { .. })
        ));
        assert!(matches!(
            d.require("370302999999", DivisionLevel::Committee),
            Err(DivisionError::Unknown(_))
        ));
        assert!(d.require("370302", DivisionLevel::County).is_ok());
        assert!(d.knows_county("110105"));
        assert!(!d.knows_county("370399"));
    }

    #[test]
    fn bad_files_are_refused_with_the_line() {
        let mut d = Divisions::default();
        let err = d.load_csv("code,name,level,parent\n37,山东省,province,\n37x,坏,city,37\n");
        assert_eq!(
            err,
            Err(DivisionError::BadFile {
                line: 3,
                reason: "bad code '37x'".into()
            })
        );
    }
}
