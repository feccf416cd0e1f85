//! The sharing catalogue (共享目录): departments, interfaces with their
//! share class and fields, and approvals of department × interface ×
//! purposes × fields. Loaded from TOML (the shipped `data/catalogue/zibo.toml`
//! or a file the operator mounts); anything it does not approve is denied.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use popbase_export::Level;
use serde::Deserialize;
use thiserror::Error;

/// The catalogue shipped in the binary (the demo city's).
pub const SHIPPED: &str = include_str!("../../data/catalogue/zibo.toml");

/// Largest catalogue text accepted (the shipped one is about 15 KB).
pub const MAX_TEXT_BYTES: usize = 1024 * 1024;

/// Interface ids of bulk exports: `Export.<dataset>`.
pub const EXPORT_PREFIX: &str = "Export.";

/// The interface ids the gateway serves; the catalogue names them.
pub mod interface {
    pub const ENROLLMENT_CHECK: &str = "EnrollmentCheck";
    pub const INSURANCE_GAP: &str = "InsuranceGap";
    pub const EMPLOYER_LOCALITY: &str = "EmployerLocality";
    pub const PERSON_SUMMARY: &str = "PersonSummary";
    pub const CONSENT_REGISTRY: &str = "ConsentRegistry";
    pub const ACCESS_LOG: &str = "AccessLog";
    pub const AUDIT_CHAIN_HEAD: &str = "AuditChainHead";
    pub const USAGE_STATISTICS: &str = "UsageStatistics";
    /// Reading the sharing catalogue itself, and checking an edited one.
    pub const SHARING_CATALOGUE: &str = "SharingCatalogue";
    /// Applying an edited sharing catalogue.
    pub const CATALOGUE_CHANGE: &str = "CatalogueChange";
    /// How the storage roles stand: store figures, backups.
    pub const PLATFORM_HEALTH: &str = "PlatformHealth";
    /// The ledger's own check of the audit chain ("verify now").
    pub const AUDIT_CHAIN_VERIFY: &str = "AuditChainVerify";
    /// Searches of the audit trail (by person, department, interface, time).
    pub const AUDIT_SEARCH: &str = "AuditSearch";
    /// Departments' writes: household-registration events (fields: event
    /// kinds) and feeds (fields: record kinds).
    pub const SUBMIT_LIFE_EVENT: &str = "SubmitLifeEvent";
    pub const SUBMIT_FEED: &str = "SubmitFeed";
    /// Residence registrations and permits (fields: event kinds).
    pub const SUBMIT_RESIDENCE: &str = "SubmitResidence";
    /// Change notifications (fields: change kinds and change fields).
    pub const CHANGE_NOTIFICATIONS: &str = "ChangeNotifications";
    /// Audit name of export calls refused before their dataset was known.
    pub const EXPORT: &str = "Export";
}

#[derive(Debug, Error)]
pub enum CatalogueError {
    #[error("catalogue {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("catalogue {origin}: {what}")]
    Invalid { origin: String, what: String },
    #[error("cannot read catalogue {path}: {source}")]
    Read { path: String, source: std::io::Error },
}

impl CatalogueError {
    /// The error for an answer or a log: quoted text (names, values the
    /// editor typed) shown as `…`, long digit runs too, at most 300
    /// characters: an edited catalogue is caller text, and the answer
    /// never repeats it. The error names the line or the entry.
    pub fn without_caller_text(&self) -> String {
        redact_quoted(&self.to_string())
    }
}

/// `text` with every quoted segment ('…', "…", `…`) and every run of six
/// or more digits replaced by `…`, cut to 300 characters.
pub fn redact_quoted(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if matches!(c, '\'' | '"' | '`') {
            out.push(c);
            out.push('…');
            for inner in chars.by_ref() {
                if inner == c {
                    out.push(c);
                    break;
                }
            }
        } else if c.is_ascii_digit() {
            let mut run = String::from(c);
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                run.push(d);
                chars.next();
            }
            out.push_str(if run.len() >= 6 { "…" } else { &run });
        } else {
            out.push(c);
        }
        if out.chars().count() >= 300 {
            break;
        }
    }
    out.chars().take(300).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareClass {
    /// 无条件共享: any approved department, no consent.
    Unconditional,
    /// 有条件共享: the subject's consent unless a legal basis is named.
    Conditional,
    /// 不予共享: never answered.
    NotShared,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Department {
    pub id: String,
    pub name: String,
    /// Subject CN of the department's client certificate (mTLS).
    pub certificate_cn: String,
    /// Pins: SHA-256 (hex) of the SubjectPublicKeyInfo of each certificate
    /// key the department may present. Empty: any certificate of the
    /// departments' CA with the CN. Revoking a department's certificate is
    /// removing its pin: the department's other keys and every other
    /// department keep working.
    #[serde(default)]
    pub certificate_spki_sha256: Vec<String>,
    /// Units (calls, or items of a stream) per calendar day.
    pub daily_quota: u64,
    /// Sustained units per second (token bucket, burst of one second).
    pub per_second: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interface {
    pub id: String,
    pub name: String,
    pub share_class: ShareClass,
    /// The statutory duty the interface rests on; empty: consent needed
    /// (for conditional interfaces about persons).
    #[serde(default)]
    pub legal_basis: String,
    pub fields: Vec<String>,
    /// Interfaces about one kind of subject only (the enrollment check's
    /// school-age child): the youngest and oldest age, inclusive, a subject
    /// may have on the request's reference date. Absent: any age.
    #[serde(default)]
    pub subject_ages: Option<[u32; 2]>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    pub department: String,
    pub interface: String,
    pub purposes: Vec<String>,
    pub fields: BTreeSet<String>,
    /// Exports only: the least de-identification the department may receive.
    #[serde(default)]
    pub deidentification: Level,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    city: String,
    #[serde(default = "default_self_consent_age")]
    self_consent_age: u32,
    #[serde(default)]
    department: Vec<Department>,
    #[serde(default)]
    interface: Vec<Interface>,
    #[serde(default)]
    approval: Vec<Approval>,
}

/// PIPL art. 31: a child under 14 consents through a parent or guardian.
fn default_self_consent_age() -> u32 {
    14
}

#[derive(Debug, Clone)]
pub struct Catalogue {
    /// 4-digit code of the city the platform serves.
    pub city: String,
    /// The youngest age at which a subject grants consent in person; a
    /// younger subject's consent needs a grantor the registry shows as
    /// parent or guardian (default 14, PIPL art. 31).
    pub self_consent_age: u32,
    departments: HashMap<String, Department>,
    by_certificate: HashMap<String, String>,
    interfaces: HashMap<String, Interface>,
    /// Department → interface → approval: looked up on every call without
    /// building a key, and shared with the admissions it grants.
    approvals: HashMap<String, HashMap<String, Arc<Approval>>>,
}

impl Catalogue {
    pub fn shipped() -> Result<Self, CatalogueError> {
        Self::parse(SHIPPED, "data/catalogue/zibo.toml")
    }

    /// The shipped catalogue, or the file at `path` when it is not empty.
    pub fn load(path: &Path) -> Result<Self, CatalogueError> {
        Ok(Self::load_with_text(path)?.0)
    }

    /// [`Catalogue::load`], and the TOML it was read from.
    pub fn load_with_text(path: &Path) -> Result<(Self, String), CatalogueError> {
        if path.as_os_str().is_empty() {
            return Ok((Self::shipped()?, SHIPPED.to_string()));
        }
        let text = std::fs::read_to_string(path).map_err(|source| CatalogueError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let catalogue = Self::parse(&text, &path.display().to_string())?;
        Ok((catalogue, text))
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, CatalogueError> {
        let file: CatalogueFile = toml::from_str(text).map_err(|e| {
            // The message without the parser's excerpt of the text, and where.
            let line = e
                .span()
                .map_or(0, |span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            CatalogueError::Parse {
                origin: origin.into(),
                message: format!("line {line}: {}", e.message()),
            }
        })?;
        let invalid = |what: String| CatalogueError::Invalid {
            origin: origin.into(),
            what,
        };
        let mut catalogue = Catalogue {
            city: file.city,
            self_consent_age: file.self_consent_age,
            departments: HashMap::new(),
            by_certificate: HashMap::new(),
            interfaces: HashMap::new(),
            approvals: HashMap::new(),
        };
        for d in file.department {
            if let Some(pin) = d
                .certificate_spki_sha256
                .iter()
                .find(|p| p.len() != 64 || !p.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(invalid(format!(
                    "department '{}': certificate_spki_sha256 '{pin}' is not 64 hex digits",
                    d.id
                )));
            }
            if catalogue.by_certificate.insert(d.certificate_cn.clone(), d.id.clone()).is_some() {
                return Err(invalid(format!("certificate_cn '{}' names two departments", d.certificate_cn)));
            }
            if let Some(old) = catalogue.departments.insert(d.id.clone(), d) {
                return Err(invalid(format!("department '{}' listed twice", old.id)));
            }
        }
        for i in file.interface {
            if i.id.starts_with(EXPORT_PREFIX) && i.share_class == ShareClass::Conditional && i.legal_basis.is_empty() {
                return Err(invalid(format!(
                    "{} exports in bulk and cannot rest on each person's consent: name its legal_basis",
                    i.id
                )));
            }
            if let Some([youngest, oldest]) = i.subject_ages
                && youngest > oldest
            {
                return Err(invalid(format!("{}: subject_ages [{youngest}, {oldest}] is empty", i.id)));
            }
            if let Some(old) = catalogue.interfaces.insert(i.id.clone(), i) {
                return Err(invalid(format!("interface '{}' listed twice", old.id)));
            }
        }
        for (n, a) in file.approval.into_iter().enumerate() {
            let n = n + 1;
            if !catalogue.departments.contains_key(&a.department) {
                return Err(invalid(format!("[[approval]] #{n} names unknown department '{}'", a.department)));
            }
            let Some(interface) = catalogue.interfaces.get(&a.interface) else {
                return Err(invalid(format!("[[approval]] #{n} names unknown interface '{}'", a.interface)));
            };
            if let Some(field) = a.fields.iter().find(|f| !interface.fields.contains(f)) {
                return Err(invalid(format!(
                    "[[approval]] #{n} ('{}' for '{}') names field '{field}' the interface does not have",
                    a.interface, a.department
                )));
            }
            if a.purposes.is_empty() {
                return Err(invalid(format!(
                    "[[approval]] #{n} ('{}' for '{}') names no purpose",
                    a.interface, a.department
                )));
            }
            let of_department = catalogue.approvals.entry(a.department.clone()).or_default();
            if of_department.insert(a.interface.clone(), Arc::new(a)).is_some() {
                return Err(invalid(format!("[[approval]] #{n} repeats an earlier approval")));
            }
        }
        Ok(catalogue)
    }

    pub fn department(&self, id: &str) -> Option<&Department> {
        self.departments.get(id)
    }

    pub fn department_by_certificate(&self, common_name: &str) -> Option<&Department> {
        self.by_certificate.get(common_name).and_then(|id| self.departments.get(id))
    }

    pub fn interface(&self, id: &str) -> Option<&Interface> {
        self.interfaces.get(id)
    }

    pub fn approval(&self, department: &str, interface: &str) -> Option<&Arc<Approval>> {
        self.approvals.get(department)?.get(interface)
    }

    pub fn departments(&self) -> impl Iterator<Item = &Department> {
        self.departments.values()
    }

    pub fn interfaces(&self) -> impl Iterator<Item = &Interface> {
        self.interfaces.values()
    }

    pub fn approvals(&self) -> impl Iterator<Item = &Arc<Approval>> {
        self.approvals.values().flat_map(|of_department| of_department.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_catalogue_loads_and_approves_the_zibo_interfaces() {
        let c = Catalogue::shipped().expect("shipped catalogue");
        assert_eq!(c.city, "3703");
        let education = c.department_by_certificate("education.dept.popbase").expect("education");
        let approval = c.approval(&education.id, interface::ENROLLMENT_CHECK).expect("approved");
        assert!(approval.purposes.contains(&"COMPULSORY_EDUCATION_ENROLLMENT".to_string()));
        assert!(c.approval("education", interface::PERSON_SUMMARY).is_none(), "default deny");
        assert_eq!(c.interface("BiometricRecord").map(|i| i.share_class), Some(ShareClass::NotShared));
        let export = c.approval("big_data", "Export.persons").expect("big data exports persons");
        assert_eq!(export.deidentification, Level::Pseudonymised);
        let police = c.approval("public_security", "Export.persons").expect("police export persons");
        assert_eq!(police.deidentification, Level::Identified);
        assert!(!police.fields.contains("phone"));
    }

    #[test]
    fn errors_for_answers_repeat_nothing_the_editor_typed() {
        assert_eq!(
            redact_quoted("names unknown department 'nobody' (370302198001011234)"),
            "names unknown department '…' (…)"
        );
        assert_eq!(
            redact_quoted("line 12: invalid type: string \"王伟\", expected u64"),
            "line 12: invalid type: string \"…\", expected u64"
        );
        assert_eq!(redact_quoted(&"x".repeat(1000)).chars().count(), 300);
        let err = Catalogue::parse("city = \"3703\"\n[[department]]\nid = \"370302198001011234\"\nname = 5\n", "t").expect_err("bad");
        let shown = err.without_caller_text();
        assert!(shown.contains("line 4") && !shown.contains("370302198001011234"), "{shown}");
    }

    #[test]
    fn approvals_must_name_known_things_and_fields() {
        let base = "city = \"3703\"\n[[department]]\nid = \"a\"\nname = \"A\"\ncertificate_cn = \"a\"\ndaily_quota = 1\nper_second = 1\n\
                    [[interface]]\nid = \"I\"\nname = \"I\"\nshare_class = \"unconditional\"\nfields = [\"x\"]\n";
        assert!(Catalogue::parse(base, "t").is_ok());
        let bad_field = format!("{base}[[approval]]\ndepartment = \"a\"\ninterface = \"I\"\npurposes = [\"P\"]\nfields = [\"y\"]\n");
        let err = Catalogue::parse(&bad_field, "t").expect_err("unknown field");
        assert!(err.to_string().contains("field 'y'"), "{err}");
        let bad_dept = format!("{base}[[approval]]\ndepartment = \"b\"\ninterface = \"I\"\npurposes = [\"P\"]\nfields = []\n");
        assert!(
            Catalogue::parse(&bad_dept, "t")
                .expect_err("unknown department")
                .to_string()
                .contains("'b'")
        );
        let consent_export = base
            .replace("id = \"I\"", "id = \"Export.persons\"")
            .replace("unconditional", "conditional");
        assert!(
            Catalogue::parse(&consent_export, "t")
                .expect_err("bulk export on consent")
                .to_string()
                .contains("legal_basis")
        );
        let bad_class = base.replace("unconditional", "sometimes");
        assert!(Catalogue::parse(&bad_class, "t").is_err());
    }
}
