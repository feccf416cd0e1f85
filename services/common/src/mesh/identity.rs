//! Who a mesh certificate names: one of the platform's roles, the backup
//! job, or an all-in-one process (every role at once), read from the
//! subject CN `<name>.roles.popbase`.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use crate::cert::subject_common_name;

/// The suffix of every mesh identity's CN.
pub const CN_SUFFIX: &str = ".roles.popbase";

/// A mesh identity: what a certificate of the internal CA may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MeshIdentity {
    Household,
    Residence,
    Feeds,
    Ledger,
    Gateway,
    /// The nightly backup job (and an SRE's `popbase backup` / `popbase stats`):
    /// calls only `popbase.ops.v1.Ops`.
    Backup,
    /// A process serving every role (`popbase serve --role all`): it holds
    /// every role's data already, so it may call as any of them.
    AllInOne,
}

impl MeshIdentity {
    pub const ALL: [MeshIdentity; 7] = [
        MeshIdentity::Household,
        MeshIdentity::Residence,
        MeshIdentity::Feeds,
        MeshIdentity::Ledger,
        MeshIdentity::Gateway,
        MeshIdentity::Backup,
        MeshIdentity::AllInOne,
    ];

    /// The short name (`household`, ..., `backup`, `all`).
    pub fn name(self) -> &'static str {
        match self {
            MeshIdentity::Household => "household",
            MeshIdentity::Residence => "residence",
            MeshIdentity::Feeds => "feeds",
            MeshIdentity::Ledger => "ledger",
            MeshIdentity::Gateway => "gateway",
            MeshIdentity::Backup => "backup",
            MeshIdentity::AllInOne => "all",
        }
    }

    /// The subject CN a certificate for this identity carries.
    pub fn common_name(self) -> String {
        format!("{}{CN_SUFFIX}", self.name())
    }

    /// The identity a short name stands for.
    pub fn from_name(name: &str) -> Option<MeshIdentity> {
        MeshIdentity::ALL.into_iter().find(|identity| identity.name() == name)
    }

    /// The identity a process serving `role` presents; none for the
    /// console, which is a client of the gateway's department port and
    /// never of the mesh.
    pub fn of_role(role: crate::Role) -> Option<MeshIdentity> {
        Some(match role {
            crate::Role::All => MeshIdentity::AllInOne,
            crate::Role::Household => MeshIdentity::Household,
            crate::Role::Residence => MeshIdentity::Residence,
            crate::Role::Feeds => MeshIdentity::Feeds,
            crate::Role::Ledger => MeshIdentity::Ledger,
            crate::Role::Gateway => MeshIdentity::Gateway,
            crate::Role::Console => return None,
        })
    }

    /// The identity a subject CN names, if it is one.
    pub fn from_common_name(cn: &str) -> Option<MeshIdentity> {
        cn.strip_suffix(CN_SUFFIX).and_then(MeshIdentity::from_name)
    }

    /// The identity of a DER certificate (the peer's leaf).
    pub fn of_der(der: &[u8]) -> Option<MeshIdentity> {
        subject_common_name(der).and_then(|cn| MeshIdentity::from_common_name(&cn))
    }
}

/// The identity named by the first certificate of a PEM file, or why none.
pub fn of_pem(pem: &[u8]) -> Result<MeshIdentity, String> {
    let der = CertificateDer::pem_slice_iter(pem)
        .next()
        .ok_or("no PEM certificate")?
        .map_err(|e| format!("not a PEM certificate: {e}"))?;
    let cn = subject_common_name(&der).ok_or("no subject CN")?;
    MeshIdentity::from_common_name(&cn).ok_or_else(|| {
        let names: Vec<&str> = MeshIdentity::ALL.iter().map(|i| i.name()).collect();
        format!("subject CN '{cn}' is not <role>{CN_SUFFIX} with role one of {}", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_strangers_are_none() {
        for identity in MeshIdentity::ALL {
            assert_eq!(MeshIdentity::from_common_name(&identity.common_name()), Some(identity));
        }
        for cn in [
            "gateway",
            "gateway.roles.popbase.evil",
            "x.roles.popbase",
            ".roles.popbase",
            "education.dept.popbase",
        ] {
            assert_eq!(MeshIdentity::from_common_name(cn), None, "{cn}");
        }
    }

    #[test]
    fn a_pem_names_its_identity_or_says_why_not() {
        let pki = crate::mesh::pki::Pki::new("popbase mesh CA (test)").expect("CA");
        let ledger = pki.issue(MeshIdentity::Ledger, &["localhost"]).expect("issue");
        assert_eq!(of_pem(ledger.cert_pem.as_bytes()), Ok(MeshIdentity::Ledger));
        assert!(
            of_pem(pki.ca_pem().as_bytes())
                .expect_err("the CA is no role")
                .contains("is not <role>")
        );
        assert_eq!(of_pem(b"nothing"), Err("no PEM certificate".into()));
    }
}
