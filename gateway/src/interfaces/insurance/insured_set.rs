//! Who is insured, asked for a whole city at once.
//!
//! For a county or smaller, the registry's persons are checked against the
//! feeds in batches (`CheckInsurance`, one look-up each). For a whole city
//! that is four million look-ups; reading the feeds' insured in one pass
//! (`StreamInsured`, ID order, eight bytes each) and holding them in a set
//! costs a fraction of that: about 8 bytes and a slot per insured person
//! (some 70 MB for Zibo's four million), for the length of one list.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use popbase_common::ServiceResult;
use popbase_common::packed::{self, PackedStream};
use popbase_domain::id_number;

use crate::sources::upstream;

/// Most slots reserved up front from the sender's estimate: a large
/// city's insured (the set still grows past it if it must).
const MAX_RESERVED: u64 = 8_000_000;

/// The insured of the city, by packed ID number.
pub struct InsuredSet {
    packed: HashSet<u64, BuildHasherDefault<PackedIdHasher>>,
    /// Numbers that came unpacked (none from a store that validated them).
    unpacked: HashSet<String>,
}

impl InsuredSet {
    /// Reads the feeds' whole stream (a stream cut short is UNAVAILABLE,
    /// never a smaller set: a person missing from it would be listed as
    /// uninsured).
    pub async fn read(stream: PackedStream) -> ServiceResult<Self> {
        let mut set = Self {
            packed: HashSet::default(),
            unpacked: HashSet::new(),
        };
        packed::read_whole(stream, packed::STALL, |message| {
            if set.packed.is_empty() && message.expected > 0 {
                // One allocation instead of a rehash at every doubling.
                set.packed.reserve(usize::try_from(message.expected.min(MAX_RESERVED)).unwrap_or(0));
            }
            set.packed.extend(message.ids);
            set.unpacked.extend(message.unpacked);
        })
        .await
        .map_err(|s| upstream("the feeds service", s))?;
        Ok(set)
    }

    pub fn len(&self) -> usize {
        self.packed.len() + self.unpacked.len()
    }

    pub fn contains(&self, id: &str) -> bool {
        match id_number::pack(id) {
            Some(packed) => self.packed.contains(&packed),
            None => self.unpacked.contains(id),
        }
    }

    pub fn contains_packed(&self, packed: u64) -> bool {
        self.packed.contains(&packed)
    }
}

/// A packed ID number is already an integer with its entropy spread over
/// the digits; one multiplication by an odd constant (Fibonacci hashing)
/// mixes it into every bit the table uses (the low bits pick the bucket,
/// the high seven its tag), at a fraction of SipHash's cost per probe.
#[derive(Default)]
pub struct PackedIdHasher(u64);

impl Hasher for PackedIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[cfg(test)]
mod tests {
    use popbase_proto::common::PackedIdNumbers;
    use tonic::Status;

    use super::*;

    fn stream(messages: Vec<Result<PackedIdNumbers, Status>>) -> PackedStream {
        Box::pin(futures::stream::iter(messages))
    }

    #[tokio::test]
    async fn holds_packed_and_unpacked_numbers() {
        let insured = "11010519491231002X";
        let message = PackedIdNumbers {
            ids: vec![id_number::pack(insured).expect("valid")],
            unpacked: vec!["1101051949123100".into()],
            expected: 2,
            complete: true,
        };
        let set = InsuredSet::read(stream(vec![Ok(message)])).await.expect("read");
        assert_eq!(set.len(), 2);
        assert!(set.contains(insured));
        assert!(set.contains("1101051949123100"));
        let other = id_number::unpack(id_number::pack(insured).expect("valid") + 1).expect("17 digits");
        assert!(!set.contains(&other));
    }

    #[tokio::test]
    async fn a_broken_stream_is_an_unavailable_source_not_an_empty_set() {
        let broken = stream(vec![Ok(PackedIdNumbers::default()), Err(Status::internal("feeds store"))]);
        let cut = stream(vec![Ok(PackedIdNumbers {
            ids: vec![1],
            ..Default::default()
        })]);
        assert!(
            matches!(InsuredSet::read(cut).await, Err(popbase_common::ServiceError::Unavailable(_))),
            "cut short"
        );
        let read = InsuredSet::read(broken).await;
        assert!(matches!(read, Err(popbase_common::ServiceError::Unavailable(_))));
    }
}
