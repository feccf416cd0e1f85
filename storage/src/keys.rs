//! The one order-preserving key encoding.
//!
//! Composite keys are built component by component; byte order of the encoded
//! keys equals the natural order of the component tuples, so range and prefix
//! scans work directly on RocksDB's sorted keys.
//!
//! * strings: bytes with `0x00` escaped as `0x00 0xFF`, terminated by `0x00 0x01`
//!   (the FoundationDB tuple-layer trick: a shorter string sorts first, and no
//!   string is a prefix of a longer one's encoding unless it is its prefix);
//! * unsigned integers: fixed-width big-endian;
//! * signed integers: big-endian with the sign bit flipped.
//!
//! [`KeyBuilder::str_prefix`] writes a string *without* its terminator, for
//! scans like "every committee code starting with 370302".

use thiserror::Error;

const ESCAPE: u8 = 0x00;
const ESCAPED_ZERO: u8 = 0xFF;
const TERMINATOR: u8 = 0x01;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("key ended inside a component")]
    Truncated,
    #[error("string component is not UTF-8")]
    NotUtf8,
    #[error("bad escape in string component")]
    BadEscape,
    #[error("{0} unread bytes at the end of the key")]
    Trailing(usize),
}

#[derive(Debug, Default, Clone)]
pub struct KeyBuilder {
    buf: Vec<u8>,
}

impl KeyBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn str(mut self, s: &str) -> Self {
        self.push_escaped(s.as_bytes());
        self.buf.extend_from_slice(&[ESCAPE, TERMINATOR]);
        self
    }

    /// A string written without terminator: only valid as the last component
    /// of a scan prefix.
    pub fn str_prefix(mut self, s: &str) -> Self {
        self.push_escaped(s.as_bytes());
        self
    }

    pub fn u64(mut self, v: u64) -> Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u32(mut self, v: u32) -> Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn u8(mut self, v: u8) -> Self {
        self.buf.push(v);
        self
    }

    pub fn i64(mut self, v: i64) -> Self {
        self.buf.extend_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
        self
    }

    pub fn build(self) -> Vec<u8> {
        self.buf
    }

    /// Copies `bytes` a run at a time between escape bytes (which are rare:
    /// only binary components have them), with room reserved up front for
    /// the terminator and a trailing integer, as most keys end.
    fn push_escaped(&mut self, bytes: &[u8]) {
        self.buf.reserve(bytes.len() + 2 + 8);
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(|&b| b == ESCAPE) {
            self.buf.extend_from_slice(&rest[..=i]);
            self.buf.push(ESCAPED_ZERO);
            rest = &rest[i + 1..];
        }
        self.buf.extend_from_slice(rest);
    }
}

/// Reads components back in the order they were written.
#[derive(Debug)]
pub struct KeyReader<'a> {
    rest: &'a [u8],
}

impl<'a> KeyReader<'a> {
    pub fn new(key: &'a [u8]) -> Self {
        Self { rest: key }
    }

    pub fn str(&mut self) -> Result<String, KeyError> {
        let mut out = Vec::new();
        loop {
            // Everything up to the next escape byte is the string's own.
            let i = self.rest.iter().position(|&b| b == ESCAPE).ok_or(KeyError::Truncated)?;
            out.extend_from_slice(&self.rest[..i]);
            match self.rest.get(i + 1) {
                Some(&TERMINATOR) => {
                    self.rest = &self.rest[i + 2..];
                    return String::from_utf8(out).map_err(|_| KeyError::NotUtf8);
                }
                Some(&ESCAPED_ZERO) => {
                    out.push(ESCAPE);
                    self.rest = &self.rest[i + 2..];
                }
                Some(_) => return Err(KeyError::BadEscape),
                None => return Err(KeyError::Truncated),
            }
        }
    }

    /// [`KeyReader::str`] without a copy when the string holds no zero
    /// byte (every code and ID number): scans over millions of keys read
    /// them this way.
    pub fn str_ref(&mut self) -> Result<std::borrow::Cow<'a, str>, KeyError> {
        let i = self.rest.iter().position(|&b| b == ESCAPE).ok_or(KeyError::Truncated)?;
        if self.rest.get(i + 1) != Some(&TERMINATOR) {
            return self.str().map(std::borrow::Cow::Owned);
        }
        let text = std::str::from_utf8(&self.rest[..i]).map_err(|_| KeyError::NotUtf8)?;
        self.rest = &self.rest[i + 2..];
        Ok(std::borrow::Cow::Borrowed(text))
    }

    pub fn u64(&mut self) -> Result<u64, KeyError> {
        Ok(u64::from_be_bytes(self.fixed::<8>()?))
    }

    pub fn u32(&mut self) -> Result<u32, KeyError> {
        Ok(u32::from_be_bytes(self.fixed::<4>()?))
    }

    pub fn u8(&mut self) -> Result<u8, KeyError> {
        Ok(self.fixed::<1>()?[0])
    }

    pub fn i64(&mut self) -> Result<i64, KeyError> {
        Ok((u64::from_be_bytes(self.fixed::<8>()?) ^ (1 << 63)) as i64)
    }

    /// Fails unless every byte was consumed.
    pub fn finish(self) -> Result<(), KeyError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(KeyError::Trailing(n)),
        }
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], KeyError> {
        if self.rest.len() < N {
            return Err(KeyError::Truncated);
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&self.rest[..N]);
        self.rest = &self.rest[N..];
        Ok(out)
    }
}

/// The second string of a `(scope, id)` index key, e.g. the ID number in a
/// `(household_id, id_number)` membership entry.
pub fn second_str(key: &[u8]) -> Result<String, KeyError> {
    let mut reader = KeyReader::new(key);
    reader.str()?;
    reader.str()
}

/// [`second_str`] without a copy when the string holds no zero byte: the ID
/// number of a `(scope, id_number)` index key, read millions of times by a
/// whole-division scan.
pub fn second_str_ref(key: &[u8]) -> Result<std::borrow::Cow<'_, str>, KeyError> {
    let mut reader = KeyReader::new(key);
    reader.str_ref()?;
    reader.str_ref()
}

/// The smallest key greater than every key starting with `prefix`
/// (`None` when the prefix is all `0xFF`, i.e. unbounded).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Vec<u8> {
        KeyBuilder::new().str(v).build()
    }

    #[test]
    fn str_ref_borrows_plain_strings_and_copies_escaped_ones() {
        let key = KeyBuilder::new().str("370302").str("a\0b").u8(7).build();
        let mut reader = KeyReader::new(&key);
        assert!(matches!(reader.str_ref(), Ok(std::borrow::Cow::Borrowed("370302"))));
        assert_eq!(reader.str_ref().map(|s| s.into_owned()), Ok("a\0b".to_string()));
        assert_eq!(reader.u8(), Ok(7));
        assert_eq!(KeyReader::new(b"abc").str_ref(), Err(KeyError::Truncated));
        assert_eq!(second_str_ref(&key).map(|s| s.into_owned()), Ok("a\0b".to_string()));
    }

    #[test]
    fn strings_sort_like_their_text() {
        let mut words = vec!["b", "", "a\0b", "a", "ab", "a\0", "中文", "aa"];
        let mut encoded: Vec<Vec<u8>> = words.iter().map(|w| s(w)).collect();
        words.sort();
        encoded.sort();
        let decoded: Vec<String> = encoded.iter().map(|k| KeyReader::new(k).str().expect("decodes")).collect();
        assert_eq!(decoded, words);
    }

    #[test]
    fn integers_sort_numerically() {
        let values = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        let encoded: Vec<Vec<u8>> = values.iter().map(|v| KeyBuilder::new().i64(*v).build()).collect();
        assert!(encoded.windows(2).all(|w| w[0] < w[1]));
        for (v, k) in values.iter().zip(&encoded) {
            assert_eq!(KeyReader::new(k).i64(), Ok(*v));
        }
        let a = KeyBuilder::new().u64(255).build();
        let b = KeyBuilder::new().u64(256).build();
        assert!(a < b);
    }

    #[test]
    fn composite_keys_round_trip_and_order_by_first_component() {
        let k1 = KeyBuilder::new().str("370302").u64(9).str("x").build();
        let k2 = KeyBuilder::new().str("3703021").u64(1).build();
        assert!(k1 < k2, "a shorter first component sorts first");
        let mut r = KeyReader::new(&k1);
        assert_eq!(r.str().as_deref(), Ok("370302"));
        assert_eq!(r.u64(), Ok(9));
        assert_eq!(r.str().as_deref(), Ok("x"));
        assert_eq!(r.finish(), Ok(()));
        assert_eq!(second_str(&KeyBuilder::new().str("h1").str("id").build()).as_deref(), Ok("id"));
        assert_eq!(second_str(&KeyBuilder::new().str("h1").build()), Err(KeyError::Truncated));
    }

    #[test]
    fn str_prefix_matches_longer_codes() {
        let prefix = KeyBuilder::new().str_prefix("370302").build();
        assert!(s("370302001001").starts_with(&prefix));
        assert!(!s("370303001001").starts_with(&prefix));
        assert!(s("370302").starts_with(&prefix));
    }

    #[test]
    fn malformed_keys_are_errors_not_panics() {
        assert_eq!(KeyReader::new(b"abc").str(), Err(KeyError::Truncated));
        assert_eq!(KeyReader::new(&[0x61, 0x00, 0x07]).str(), Err(KeyError::BadEscape));
        assert_eq!(KeyReader::new(&[1, 2]).u64(), Err(KeyError::Truncated));
        assert_eq!(KeyReader::new(&[1, 2]).finish(), Err(KeyError::Trailing(2)));
    }

    #[test]
    fn prefix_end_is_the_exclusive_upper_bound() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[0x61, 0xFF]), Some(vec![0x62]));
        assert_eq!(prefix_end(&[0xFF, 0xFF]), None);
    }
}
