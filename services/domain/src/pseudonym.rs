//! Keyed pseudonyms: a stable stand-in for an ID number that cannot be reversed
//! without the key (HMAC-SHA-256).
//!
//! Used in the audit trail (subjects are never stored in clear) and in
//! de-identified exports. A *domain* string separates uses, so the audit
//! pseudonym of a person cannot be joined with an export pseudonym unless
//! both sides are meant to share a domain.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Length of a pseudonym in hex characters (128 bits).
pub const PSEUDONYM_HEX_LEN: usize = 32;

#[derive(Clone)]
pub struct Pseudonymizer {
    key: Vec<u8>,
}

impl Pseudonymizer {
    /// `key` should be at least 32 random bytes, kept as a secret.
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into() }
    }

    /// The pseudonym of `subject` within `domain`, as 32 lower-case hex characters.
    pub fn pseudonym(&self, domain: &str, subject: &str) -> String {
        self.domain(domain).pseudonym(subject)
    }

    /// A pseudonymiser for one domain, keyed once: an export pseudonymises
    /// millions of ID numbers and should not redo the key schedule for each.
    pub fn domain(&self, domain: &str) -> DomainPseudonyms {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
        let Ok(mut mac) = HmacSha256::new_from_slice(&self.key) else {
            unreachable!("HMAC takes keys of any length")
        };
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        DomainPseudonyms { keyed: mac }
    }
}

/// [`Pseudonymizer::pseudonym`] for one domain, the keyed state prepared.
#[derive(Clone)]
pub struct DomainPseudonyms {
    keyed: HmacSha256,
}

impl DomainPseudonyms {
    pub fn pseudonym(&self, subject: &str) -> String {
        self.pseudonym_hex(subject).as_str().to_string()
    }

    /// The pseudonym without allocating: an export appends millions of
    /// them straight into an Arrow column.
    pub fn pseudonym_hex(&self, subject: &str) -> PseudonymHex {
        let mut mac = self.keyed.clone();
        mac.update(subject.as_bytes());
        let digest = mac.finalize().into_bytes();
        PseudonymHex(lower_hex(&digest[..PSEUDONYM_HEX_LEN / 2]))
    }
}

/// A pseudonym's hex characters on the stack.
pub struct PseudonymHex([u8; PSEUDONYM_HEX_LEN]);

impl PseudonymHex {
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written, so this cannot fail.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Lower-case hex by table: exports write millions of pseudonyms and the
/// `hex` crate's iterator showed up at 6 % of an export's profile.
fn lower_hex(bytes: &[u8]) -> [u8; PSEUDONYM_HEX_LEN] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'0'; PSEUDONYM_HEX_LEN];
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0x0f)];
    }
    out
}

impl std::fmt::Debug for DomainPseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DomainPseudonyms(<key>)")
    }
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(<key>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_keyed_and_domain_separated() {
        let a = Pseudonymizer::new(b"key-one".to_vec());
        let b = Pseudonymizer::new(b"key-two".to_vec());
        let p = a.pseudonym("audit", "11010519491231002X");
        assert_eq!(p.len(), PSEUDONYM_HEX_LEN);
        assert_eq!(p, a.pseudonym("audit", "11010519491231002X"));
        assert_ne!(p, b.pseudonym("audit", "11010519491231002X"));
        assert_ne!(p, a.pseudonym("export", "11010519491231002X"));
        assert_ne!(p, a.pseudonym("audit", "110105194912310021"));
        assert_eq!(a.domain("audit").pseudonym("11010519491231002X"), p, "prepared domain, same answer");
        let bytes: Vec<u8> = (0..16).map(|i| i * 17).collect();
        assert_eq!(std::str::from_utf8(&lower_hex(&bytes)).expect("ascii"), hex::encode(&bytes));
        assert_eq!(a.domain("audit").pseudonym_hex("11010519491231002X").as_str(), p);
        assert!(!format!("{a:?}").contains("key-one"));
    }

    /// RFC 4231 test case 2 pins the HMAC itself.
    #[test]
    fn hmac_matches_rfc_4231() {
        let mut mac = HmacSha256::new_from_slice(b"Jefe").expect("any key length");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
