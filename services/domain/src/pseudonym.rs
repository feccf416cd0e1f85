//! Keyed pseudonyms: a stable stand-in for an ID number that cannot be reversed
//! without the key (HMAC-SHA-256).
//!
//! Used in the audit trail (subjects are never stored in clear) and in
//! de-identified exports. A *domain* string separates uses, so the audit
//! pseudonym of a person cannot be joined with an export pseudonym unless
//! both sides are meant to share a domain.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::sha256x2::{BLOCK, IV, compress, compress2};

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
        let mut prefix = domain.as_bytes().to_vec();
        prefix.push(0);
        mac.update(&prefix);
        DomainPseudonyms {
            keyed: mac,
            blocks: KeyedBlocks::new(&self.key),
            prefix,
        }
    }
}

/// The bytes a message may fill in its last block (the rest holds the
/// 0x80 marker and the 64-bit length).
const ROOM_IN_ONE_BLOCK: usize = BLOCK - 9;

/// HMAC-SHA-256 with its two key blocks hashed once (RFC 2104): for a
/// message that fits one block, a pseudonym is two compressions on
/// copies of these states and nothing else. Cloning the `hmac` crate's
/// keyed state and finishing it cost as much again as the compressions
/// (a fifth of a pseudonymised export); the answers are the same, see the
/// tests.
#[derive(Clone)]
struct KeyedBlocks {
    /// The state after the key XOR ipad block.
    inner: [u32; 8],
    /// The state after the key XOR opad block.
    outer: [u32; 8],
}

impl KeyedBlocks {
    fn new(key: &[u8]) -> Self {
        use sha2::Digest;
        let mut padded = [0u8; BLOCK];
        if key.len() > BLOCK {
            padded[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            padded[..key.len()].copy_from_slice(key);
        }
        let keyed = |pad: u8| {
            let mut state = IV;
            compress(&mut state, &padded.map(|b| b ^ pad));
            state
        };
        Self {
            inner: keyed(0x36),
            outer: keyed(0x5c),
        }
    }

    /// The HMAC of `parts` joined, when they fit one block after the key's.
    fn mac(&self, parts: [&[u8]; 2]) -> Option<[u8; 32]> {
        let mut inner = self.inner;
        compress(&mut inner, &last_block(parts)?);
        let mut outer = self.outer;
        compress(&mut outer, &last_block([&digest(inner), &[]])?);
        Some(digest(outer))
    }

    /// [`KeyedBlocks::mac`] of two messages, their compressions side by
    /// side (see [`crate::sha256x2`]).
    fn mac2(&self, a: [&[u8]; 2], b: [&[u8]; 2]) -> Option<[[u8; 32]; 2]> {
        let (mut inner_a, mut inner_b) = (self.inner, self.inner);
        compress2(&mut inner_a, &last_block(a)?, &mut inner_b, &last_block(b)?);
        let (mut outer_a, mut outer_b) = (self.outer, self.outer);
        let (last_a, last_b) = (last_block([&digest(inner_a), &[]])?, last_block([&digest(inner_b), &[]])?);
        compress2(&mut outer_a, &last_a, &mut outer_b, &last_b);
        Some([digest(outer_a), digest(outer_b)])
    }
}

/// `parts` joined as the last block of a message that follows one block
/// already hashed (padding and length filled in); none when they do not fit.
fn last_block(parts: [&[u8]; 2]) -> Option<[u8; BLOCK]> {
    let len = parts[0].len() + parts[1].len();
    if len > ROOM_IN_ONE_BLOCK {
        return None;
    }
    let mut block = [0u8; BLOCK];
    block[..parts[0].len()].copy_from_slice(parts[0]);
    block[parts[0].len()..len].copy_from_slice(parts[1]);
    block[len] = 0x80;
    let bits = ((BLOCK + len) as u64) * 8;
    block[BLOCK - 8..].copy_from_slice(&bits.to_be_bytes());
    Some(block)
}

/// The digest a finished state stands for.
fn digest(state: [u32; 8]) -> [u8; 32] {
    let mut digest = [0u8; 32];
    for (out, word) in digest.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

/// [`Pseudonymizer::pseudonym`] for one domain, the keyed state prepared.
#[derive(Clone)]
pub struct DomainPseudonyms {
    /// For subjects too long for [`KeyedBlocks`] (never an ID number).
    keyed: HmacSha256,
    blocks: KeyedBlocks,
    /// The domain and its terminating zero byte.
    prefix: Vec<u8>,
}

impl DomainPseudonyms {
    pub fn pseudonym(&self, subject: &str) -> String {
        self.pseudonym_hex(subject).as_str().to_string()
    }

    /// The pseudonym without allocating: an export appends millions of
    /// them straight into an Arrow column.
    pub fn pseudonym_hex(&self, subject: &str) -> PseudonymHex {
        let digest = self.blocks.mac([&self.prefix, subject.as_bytes()]).unwrap_or_else(|| {
            let mut mac = self.keyed.clone();
            mac.update(subject.as_bytes());
            mac.finalize().into_bytes().into()
        });
        PseudonymHex(lower_hex(&digest[..PSEUDONYM_HEX_LEN / 2]))
    }

    /// The pseudonyms of two subjects, hashed side by side: an export
    /// pseudonymises its columns two values at a time.
    pub fn pseudonym_hex_pair(&self, a: &str, b: &str) -> [PseudonymHex; 2] {
        match self.blocks.mac2([&self.prefix, a.as_bytes()], [&self.prefix, b.as_bytes()]) {
            Some([digest_a, digest_b]) => [
                PseudonymHex(lower_hex(&digest_a[..PSEUDONYM_HEX_LEN / 2])),
                PseudonymHex(lower_hex(&digest_b[..PSEUDONYM_HEX_LEN / 2])),
            ],
            None => [self.pseudonym_hex(a), self.pseudonym_hex(b)],
        }
    }
}

/// A pseudonym's hex characters on the stack.
pub struct PseudonymHex([u8; PSEUDONYM_HEX_LEN]);

/// The first 8 bytes of a pseudonym given as its 32 lower- or upper-case hex
/// digits, as a number (big-endian): the compact id under which an export
/// names its subjects in the audit trail. `None` for anything else.
pub fn pseudonym_prefix(hex: &[u8]) -> Option<u64> {
    if hex.len() != PSEUDONYM_HEX_LEN {
        return None;
    }
    // Branch-free over a table: an export parses one per row.
    let (mut id, mut invalid) = (0u64, 0u8);
    for &c in &hex[..16] {
        let digit = HEX_DIGITS[usize::from(c)];
        invalid |= digit;
        id = id << 4 | u64::from(digit & 0x0f);
    }
    for &c in &hex[16..] {
        invalid |= HEX_DIGITS[usize::from(c)];
    }
    (invalid & 0xf0 == 0).then_some(id)
}

/// Each byte's hex digit value, 0xff for a byte that is not one.
const HEX_DIGITS: [u8; 256] = {
    let mut table = [0xffu8; 256];
    let mut c = 0;
    while c < 10 {
        table[b'0' as usize + c] = c as u8;
        c += 1;
    }
    let mut c = 0;
    while c < 6 {
        table[b'a' as usize + c] = 10 + c as u8;
        table[b'A' as usize + c] = 10 + c as u8;
        c += 1;
    }
    table
};

impl PseudonymHex {
    /// The hex characters as bytes (ASCII).
    pub fn as_bytes(&self) -> &[u8; PSEUDONYM_HEX_LEN] {
        &self.0
    }

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
    fn a_pseudonym_prefix_is_its_first_eight_bytes_and_nothing_else_has_one() {
        let key = Pseudonymizer::new(b"test-key-0123456789".to_vec());
        let pseudonym = key.pseudonym("d", "370302199001011232");
        let expected = u64::from_str_radix(&pseudonym[..16], 16).expect("hex");
        assert_eq!(pseudonym_prefix(pseudonym.as_bytes()), Some(expected));
        assert_eq!(pseudonym_prefix(pseudonym.to_uppercase().as_bytes()), Some(expected));
        assert_eq!(pseudonym_prefix(&pseudonym.as_bytes()[..31]), None);
        assert_eq!(pseudonym_prefix(format!("+{}", &pseudonym[1..]).as_bytes()), None);
        assert_eq!(pseudonym_prefix(format!("{}g", &pseudonym[..31]).as_bytes()), None);
    }

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

    /// The prepared key blocks give the `hmac` crate's answer for every key
    /// length (shorter than a block, a block, hashed first) and for
    /// subjects on both sides of the one-block limit.
    #[test]
    fn prepared_blocks_are_hmac_sha256() {
        for key_len in [0, 1, 19, 32, 63, 64, 65, 131] {
            let key: Vec<u8> = (0..key_len).map(|i| (i * 7 + 3) as u8).collect();
            let domain = Pseudonymizer::new(key.clone()).domain("export");
            for len in 0..80 {
                let subject: String = (0..len).map(|i| char::from(b'0' + (i % 10) as u8)).collect();
                let Ok(mut mac) = HmacSha256::new_from_slice(&key) else {
                    unreachable!("any key length")
                };
                mac.update(b"export\0");
                mac.update(subject.as_bytes());
                let expected = hex::encode(&mac.finalize().into_bytes()[..PSEUDONYM_HEX_LEN / 2]);
                assert_eq!(domain.pseudonym(&subject), expected, "key of {key_len} bytes, subject of {len}");
            }
        }
        let domain = Pseudonymizer::new(b"pair-key".to_vec()).domain("export");
        let subjects: Vec<String> = (0..70).map(|len| "7".repeat(len)).collect();
        for a in &subjects {
            for b in subjects.iter().step_by(3) {
                let [pa, pb] = domain.pseudonym_hex_pair(a, b);
                assert_eq!(pa.as_str(), domain.pseudonym(a), "{} and {}", a.len(), b.len());
                assert_eq!(pb.as_str(), domain.pseudonym(b), "{} and {}", a.len(), b.len());
            }
        }
        let fast = KeyedBlocks::new(b"k").mac([b"export\0", &[b'1'; 48]]);
        assert!(fast.is_some(), "an ID-sized subject takes the two-compression path");
        assert!(KeyedBlocks::new(b"k").mac([b"export\0", &[b'1'; 49]]).is_none());
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
