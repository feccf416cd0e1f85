//! A throw-away PKI: a CA, the gateway's server certificate (localhost,
//! 127.0.0.1) and department client certificates, as PEM files.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

pub struct Pki {
    pub dir: PathBuf,
    pub ca_pem: String,
    ca_params: CertificateParams,
    ca_key: KeyPair,
}

pub struct Credentials {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "popbase departments CA (test)");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("CA");
        let pki = Pki {
            dir: dir.to_path_buf(),
            ca_pem: ca.pem(),
            ca_params,
            ca_key,
        };
        std::fs::write(pki.path("ca.pem"), &pki.ca_pem).expect("write CA");
        let server = pki.issue(&["localhost", "127.0.0.1"], "gateway.popbase");
        std::fs::write(pki.path("server.pem"), &server.cert_pem).expect("write server cert");
        std::fs::write(pki.path("server.key"), &server.key_pem).expect("write server key");
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A certificate with subject `common_name` signed by this CA.
    pub fn issue(&self, names: &[&str], common_name: &str) -> Credentials {
        self.issue_for_key(names, common_name, KeyPair::generate().expect("key"))
    }

    /// A certificate for `key` (so a test can pin the key beforehand).
    pub fn issue_for_key(&self, names: &[&str], common_name: &str, key: KeyPair) -> Credentials {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
        params.distinguished_name.push(DnType::CommonName, common_name);
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let cert = params.signed_by(&key, &issuer).expect("sign");
        Credentials {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A client certificate from a CA the gateway does not trust.
    pub fn foreign(common_name: &str) -> Credentials {
        let other = tempfile::tempdir().expect("tempdir");
        Pki::new(other.path()).issue(&[], common_name)
    }
}
