//! The subject common name (CN) of a DER certificate: a department's or a role's
//! identity under mTLS. rustls has already verified the chain against the
//! client CA; this only reads the name, with a minimal DER walk rather than
//! a full X.509 parser.

/// One DER TLV: (tag, contents, rest).
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const VERSION: u8 = 0xa0;
/// 2.5.4.3 id-at-commonName.
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// The TBSCertificate fields from the subject on: subject, then
/// subjectPublicKeyInfo, then the optional rest.
fn from_subject(der: &[u8]) -> Option<&[u8]> {
    let (SEQUENCE, certificate, _) = tlv(der)? else { return None };
    let (SEQUENCE, tbs, _) = tlv(certificate)? else { return None };
    let mut rest = tbs;
    let (tag, _, after) = tlv(rest)?;
    if tag == VERSION {
        rest = after;
    }
    // serial, signature algorithm, issuer, validity; then the subject.
    for _ in 0..4 {
        rest = tlv(rest)?.2;
    }
    Some(rest)
}

/// When the certificate stops being valid (its notAfter), Unix seconds.
pub fn not_after_unix(der: &[u8]) -> Option<i64> {
    let (SEQUENCE, certificate, _) = tlv(der)? else { return None };
    let (SEQUENCE, tbs, _) = tlv(certificate)? else { return None };
    let mut rest = tbs;
    let (tag, _, after) = tlv(rest)?;
    if tag == VERSION {
        rest = after;
    }
    // serial, signature algorithm, issuer; then the validity.
    for _ in 0..3 {
        rest = tlv(rest)?.2;
    }
    let (SEQUENCE, validity, _) = tlv(rest)? else { return None };
    let (_, _, after_not_before) = tlv(validity)?;
    let (tag, time, _) = tlv(after_not_before)?;
    let text = std::str::from_utf8(time).ok()?;
    let full = match tag {
        // UTCTime YYMMDDHHMMSSZ: years 50-99 are 19xx (RFC 5280).
        0x17 if text.len() == 13 => format!("{}{text}", if text[..2] >= *"50" { "19" } else { "20" }),
        // GeneralizedTime YYYYMMDDHHMMSSZ.
        0x18 if text.len() == 15 => text.to_string(),
        _ => return None,
    };
    let at = chrono::NaiveDateTime::parse_from_str(full.trim_end_matches('Z'), "%Y%m%d%H%M%S").ok()?;
    Some(at.and_utc().timestamp())
}

/// The earliest notAfter of the certificates in the PEM file at `path`
/// (a chain expires with its first certificate).
pub fn pem_file_not_after(path: &std::path::Path) -> Option<i64> {
    let text = std::fs::read(path).ok()?;
    pem::parse_many(text)
        .ok()?
        .iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .filter_map(|p| not_after_unix(p.contents()))
        .min()
}

/// SHA-256 (lower-case hex) of the certificate's DER SubjectPublicKeyInfo:
/// the pin a catalogue keeps per department key, the same value as
/// `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | sha256sum`.
pub fn spki_sha256(der: &[u8]) -> Option<String> {
    use sha2::Digest as _;
    let (SEQUENCE, _, after_subject) = tlv(from_subject(der)?)? else {
        return None;
    };
    let (SEQUENCE, _, after_key) = tlv(after_subject)? else {
        return None;
    };
    let encoded = &after_subject[..after_subject.len() - after_key.len()];
    Some(hex::encode(sha2::Sha256::digest(encoded)))
}

/// The first CN of the certificate's subject, if it has one.
pub fn subject_common_name(der: &[u8]) -> Option<String> {
    let (SEQUENCE, mut subject, _) = tlv(from_subject(der)?)? else {
        return None;
    };
    while !subject.is_empty() {
        let (SET, mut set, next) = tlv(subject)? else { return None };
        subject = next;
        while !set.is_empty() {
            let (SEQUENCE, attribute, next) = tlv(set)? else { return None };
            set = next;
            let (OID, oid, value) = tlv(attribute)? else { return None };
            if oid == COMMON_NAME {
                let (_, text, _) = tlv(value)?;
                return String::from_utf8(text.to_vec()).ok();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_subject_cn_not_the_issuers() {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "popbase test CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(rcgen::DnType::OrganizationName, "淄博市教育局");
        params.distinguished_name.push(rcgen::DnType::CommonName, "education.dept.popbase");
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let cert = params.signed_by(&key, &issuer).expect("sign");
        assert_eq!(subject_common_name(cert.der()).as_deref(), Some("education.dept.popbase"));
        assert_eq!(subject_common_name(ca.der()).as_deref(), Some("popbase test CA"));
    }

    #[test]
    fn the_key_pin_is_the_hash_of_the_public_key_info() {
        use sha2::Digest as _;
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["x".to_string()]).expect("params");
        let cert = params.self_signed(&key).expect("cert");
        let expected = hex::encode(sha2::Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&key)));
        assert_eq!(spki_sha256(cert.der()).as_deref(), Some(expected.as_str()));
        let other = rcgen::KeyPair::generate().expect("key");
        let again = rcgen::CertificateParams::new(vec!["x".to_string()])
            .expect("params")
            .self_signed(&other)
            .expect("cert");
        assert_ne!(spki_sha256(again.der()), spki_sha256(cert.der()));
    }

    #[test]
    fn reads_when_the_certificate_expires() {
        for (year, month, day) in [(2031, 5, 17), (2055, 1, 2)] {
            let key = rcgen::KeyPair::generate().expect("key");
            let mut params = rcgen::CertificateParams::new(vec!["x".to_string()]).expect("params");
            params.not_after = rcgen::date_time_ymd(year, month, day);
            let cert = params.self_signed(&key).expect("cert");
            let expected = chrono::NaiveDate::from_ymd_opt(year, u32::from(month), u32::from(day))
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp());
            // UTCTime before 2050, GeneralizedTime from then on (RFC 5280).
            assert_eq!(not_after_unix(cert.der()), expected, "{year}");
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("cert.pem");
            std::fs::write(&path, cert.pem()).expect("write");
            assert_eq!(pem_file_not_after(&path), expected);
        }
        assert_eq!(pem_file_not_after(std::path::Path::new("/nonexistent.pem")), None);
    }

    #[test]
    fn garbage_is_no_name_not_a_panic() {
        for bytes in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x03, 0x30, 0x01, 0x00],
            &[0x30, 0x82, 0xff],
        ] {
            assert_eq!(subject_common_name(bytes), None);
            assert_eq!(spki_sha256(bytes), None);
            assert_eq!(not_after_unix(bytes), None);
        }
    }
}
