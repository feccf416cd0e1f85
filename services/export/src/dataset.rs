//! The exportable datasets. The gateway lists them (as far as the caller is
//! approved), the owning role reads them; the names are what departments
//! put in tickets and the catalogue approves as `Export.<name>`.

/// The role whose store holds a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Household,
    Residence,
    Feeds,
}

#[derive(Debug)]
pub struct Dataset {
    pub name: &'static str,
    /// The catalogue interface that approves exporting it: `Export.<name>`.
    pub interface: &'static str,
    pub owner: Owner,
    pub title: &'static str,
    /// Whether a division filter applies (some rows carry no place).
    pub by_division: bool,
    /// Whether `since_seq` applies (rows of a table the change log names).
    pub incremental: bool,
}

const fn dataset(name: &'static str, interface: &'static str, owner: Owner, title: &'static str, by_division: bool) -> Dataset {
    Dataset {
        name,
        interface,
        owner,
        title,
        by_division,
        incremental: true,
    }
}

pub static DATASETS: &[Dataset] = &[
    dataset(
        "persons",
        "Export.persons",
        Owner::Household,
        "registered persons (户籍人口), every status",
        true,
    ),
    dataset(
        "households",
        "Export.households",
        Owner::Household,
        "households (户), family and collective",
        true,
    ),
    dataset(
        "changes",
        "Export.changes",
        Owner::Household,
        "registry change log: which person or household changed, when, why",
        false,
    ),
    Dataset {
        incremental: false,
        ..dataset(
            "statistics",
            "Export.statistics",
            Owner::Household,
            "registered population per residents'/villagers' committee",
            true,
        )
    },
    dataset(
        "standard_addresses",
        "Export.standard_addresses",
        Owner::Household,
        "standard addresses (标准地址): road, door numbers, committee",
        true,
    ),
    dataset(
        "residence_permits",
        "Export.residence_permits",
        Owner::Residence,
        "residence permits (居住证)",
        true,
    ),
    dataset(
        "medical_insurance",
        "Export.medical_insurance",
        Owner::Feeds,
        "medical insurance enrolment (医保参保)",
        true,
    ),
    dataset(
        "pensions",
        "Export.pensions",
        Owner::Feeds,
        "pension insurance enrolment (养老保险)",
        false,
    ),
    dataset(
        "education",
        "Export.education",
        Owner::Feeds,
        "student status (学籍) with the school's county",
        true,
    ),
    dataset(
        "marriage",
        "Export.marriage",
        Owner::Feeds,
        "marriage and divorce registrations",
        true,
    ),
    dataset(
        "housing",
        "Export.housing",
        Owner::Feeds,
        "property, registered rentals, public housing",
        true,
    ),
];

pub fn find(name: &str) -> Option<&'static Dataset> {
    DATASETS.iter().find(|d| d.name == name)
}

/// The datasets one role owns.
pub fn owned_by(owner: Owner) -> impl Iterator<Item = &'static Dataset> {
    DATASETS.iter().filter(move |d| d.owner == owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for d in DATASETS {
            assert!(std::ptr::eq(find(d.name).expect("found"), d));
        }
        assert!(find("biometrics").is_none());
        assert_eq!(owned_by(Owner::Household).count(), 5);
        for d in DATASETS {
            assert_eq!(d.interface, format!("Export.{}", d.name));
        }
    }
}
