//! Issuing the internal CA and role certificates, for `popbase pki`, the
//! demo and tests. Production issues them with cert-manager instead
//! (`k8s/overlays/prod/mesh-certificates.yaml`); both produce the same
//! shape: a CA, and per identity a certificate whose subject CN is
//! `<role>.roles.popbase` with the host names and addresses it is reached at.

use std::path::Path;

use rustls_pki_types::pem::PemObject as _;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};

use super::MeshIdentity;

fn ca_params(name: &str) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

/// Why a CA could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("writing the CA: {0}")]
    Write(#[from] std::io::Error),
}

/// A certificate and its private key, PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

/// An internal CA that can issue role certificates.
pub struct Pki {
    ca_pem: String,
    params: CertificateParams,
    key: KeyPair,
}

impl Pki {
    /// A new CA whose subject CN is `name`.
    pub fn new(name: &str) -> Result<Pki, rcgen::Error> {
        let key = KeyPair::generate()?;
        let params = ca_params(name)?;
        let ca = params.self_signed(&key)?;
        Ok(Pki {
            ca_pem: ca.pem(),
            params,
            key,
        })
    }

    /// A CA read back from its PEM certificate and key. Issuing needs only
    /// the CA's subject name and key (the authority key identifier derives
    /// from the key), so the certificate is not parsed beyond its CN.
    pub fn from_pem(ca_pem: &str, key_pem: &str) -> Result<Pki, rcgen::Error> {
        let key = KeyPair::from_pem(key_pem)?;
        let der =
            rustls_pki_types::CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(|_| rcgen::Error::CouldNotParseCertificate)?;
        let name = crate::cert::subject_common_name(&der).ok_or(rcgen::Error::CouldNotParseCertificate)?;
        Ok(Pki {
            ca_pem: ca_pem.to_string(),
            params: ca_params(&name)?,
            key,
        })
    }

    /// A new CA named `name`, written to `<dir>/ca.pem` and `<dir>/ca.key`.
    pub fn create_in(dir: &Path, name: &str) -> Result<Pki, PkiError> {
        let pki = Pki::new(name)?;
        write_pair(dir, "ca", pki.ca_pem(), &pki.ca_key_pem())?;
        Ok(pki)
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn ca_key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// A certificate for `identity`, valid as server and client, for the
    /// host names or IP addresses in `hosts`.
    pub fn issue(&self, identity: MeshIdentity, hosts: &[&str]) -> Result<Issued, rcgen::Error> {
        self.issue_named(&identity.common_name(), hosts)
    }

    /// A certificate with any subject CN (tests use it for names no role has).
    pub fn issue_named(&self, common_name: &str, hosts: &[&str]) -> Result<Issued, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        for host in hosts {
            params.subject_alt_names.push(match host.parse() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName((*host).try_into()?),
            });
        }
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &Issuer::from_params(&self.params, &self.key))?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// Writes `<dir>/<name>.pem` and `<dir>/<name>.key` (the key mode 0600).
pub fn write_pair(dir: &Path, name: &str, cert_pem: &str, key_pem: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(format!("{name}.pem")), cert_pem)?;
    let mut key = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dir.join(format!("{name}.key")))?;
    key.write_all(key_pem.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_read_back_issues_certificates_of_the_same_chain() {
        let pki = Pki::new("popbase mesh CA (test)").expect("CA");
        let again = Pki::from_pem(pki.ca_pem(), &pki.ca_key_pem()).expect("read back");
        let issued = again.issue(MeshIdentity::Feeds, &["feeds", "127.0.0.1"]).expect("issue");
        assert_eq!(super::super::identity::of_pem(issued.cert_pem.as_bytes()), Ok(MeshIdentity::Feeds));
        let dir = tempfile::tempdir().expect("tempdir");
        write_pair(dir.path(), "feeds", &issued.cert_pem, &issued.key_pem).expect("write");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("feeds.key")).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
