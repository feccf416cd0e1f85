//! Two SHA-256 block compressions at once.
//!
//! A pseudonymised export hashes two blocks per ID number and some two
//! ID numbers per row: 13 % of the server's export CPU was the x86 SHA
//! extensions' round instruction, one compression's rounds waiting on each
//! other's results. Two independent messages' rounds interleaved keep the
//! unit busy while each waits. Same instructions as the `sha2` crate's
//! x86 backend (from which the round structure is taken), run on two
//! states side by side; without the extensions, two plain compressions.
//! Tests compare every answer with the `sha2` crate.

/// SHA-256's block.
pub const BLOCK: usize = 64;

/// SHA-256's initial state (FIPS 180-4, 5.3.3).
pub const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// One compression of `block` into `state` (the `sha2` crate's, which picks
/// the SHA extensions itself when the CPU has them).
pub fn compress(state: &mut [u32; 8], block: &[u8; BLOCK]) {
    sha2::compress256(state, &[(*block).into()]);
}

/// `compress(a, block_a)` and `compress(b, block_b)`, interleaved where the
/// CPU has the SHA extensions.
pub fn compress2(a: &mut [u32; 8], block_a: &[u8; BLOCK], b: &mut [u32; 8], block_b: &[u8; BLOCK]) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("sha") && std::is_x86_feature_detected!("sse4.1") && std::is_x86_feature_detected!("ssse3") {
        // SAFETY: the CPU was just checked for the features the function
        // is compiled with; it reads and writes only through its references.
        unsafe { x86::compress2(a, block_a, b, block_b) };
        return;
    }
    compress(a, block_a);
    compress(b, block_b);
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code, clippy::cast_ptr_alignment)]
mod x86 {
    use core::arch::x86_64::*;

    use super::BLOCK;

    /// SHA-256's round constants (FIPS 180-4, 4.2.2).
    const K32: [u32; 64] = [
        0x428a_2f98,
        0x7137_4491,
        0xb5c0_fbcf,
        0xe9b5_dba5,
        0x3956_c25b,
        0x59f1_11f1,
        0x923f_82a4,
        0xab1c_5ed5,
        0xd807_aa98,
        0x1283_5b01,
        0x2431_85be,
        0x550c_7dc3,
        0x72be_5d74,
        0x80de_b1fe,
        0x9bdc_06a7,
        0xc19b_f174,
        0xe49b_69c1,
        0xefbe_4786,
        0x0fc1_9dc6,
        0x240c_a1cc,
        0x2de9_2c6f,
        0x4a74_84aa,
        0x5cb0_a9dc,
        0x76f9_88da,
        0x983e_5152,
        0xa831_c66d,
        0xb003_27c8,
        0xbf59_7fc7,
        0xc6e0_0bf3,
        0xd5a7_9147,
        0x06ca_6351,
        0x1429_2967,
        0x27b7_0a85,
        0x2e1b_2138,
        0x4d2c_6dfc,
        0x5338_0d13,
        0x650a_7354,
        0x766a_0abb,
        0x81c2_c92e,
        0x9272_2c85,
        0xa2bf_e8a1,
        0xa81a_664b,
        0xc24b_8b70,
        0xc76c_51a3,
        0xd192_e819,
        0xd699_0624,
        0xf40e_3585,
        0x106a_a070,
        0x19a4_c116,
        0x1e37_6c08,
        0x2748_774c,
        0x34b0_bcb5,
        0x391c_0cb3,
        0x4ed8_aa4a,
        0x5b9c_ca4f,
        0x682e_6ff3,
        0x748f_82ee,
        0x78a5_636f,
        0x84c8_7814,
        0x8cc7_0208,
        0x90be_fffa,
        0xa450_6ceb,
        0xbef9_a3f7,
        0xc671_78f2,
    ];

    /// One state in the SHA extensions' register layout.
    struct Lane {
        abef: __m128i,
        cdgh: __m128i,
        w: [__m128i; 4],
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn load(state: &[u32; 8], block: &[u8; BLOCK]) -> Lane {
        let mask = _mm_set_epi64x(0x0C0D_0E0F_0809_0A0Bu64 as i64, 0x0405_0607_0001_0203u64 as i64);
        let state_ptr = state.as_ptr() as *const __m128i;
        // SAFETY: `state` is 32 bytes, read as two unaligned 16-byte halves.
        let (dcba, efgh) = unsafe { (_mm_loadu_si128(state_ptr), _mm_loadu_si128(state_ptr.add(1))) };
        let cdab = _mm_shuffle_epi32(dcba, 0xB1);
        let efgh = _mm_shuffle_epi32(efgh, 0x1B);
        let data = block.as_ptr() as *const __m128i;
        // SAFETY: `block` is 64 bytes, read as four unaligned 16-byte quarters.
        let quarters = unsafe {
            [
                _mm_loadu_si128(data),
                _mm_loadu_si128(data.add(1)),
                _mm_loadu_si128(data.add(2)),
                _mm_loadu_si128(data.add(3)),
            ]
        };
        let w = [
            _mm_shuffle_epi8(quarters[0], mask),
            _mm_shuffle_epi8(quarters[1], mask),
            _mm_shuffle_epi8(quarters[2], mask),
            _mm_shuffle_epi8(quarters[3], mask),
        ];
        Lane {
            abef: _mm_alignr_epi8(cdab, efgh, 8),
            cdgh: _mm_blend_epi16(efgh, cdab, 0xF0),
            w,
        }
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn store(lane: &Lane, start: (__m128i, __m128i), state: &mut [u32; 8]) {
        let abef = _mm_add_epi32(lane.abef, start.0);
        let cdgh = _mm_add_epi32(lane.cdgh, start.1);
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
        let hgef = _mm_alignr_epi8(dchg, feba, 8);
        let state_ptr = state.as_mut_ptr() as *mut __m128i;
        // SAFETY: `state` is 32 bytes, written as two unaligned 16-byte halves.
        unsafe {
            _mm_storeu_si128(state_ptr, dcba);
            _mm_storeu_si128(state_ptr.add(1), hgef);
        }
    }

    /// Rounds `4 * i .. 4 * i + 4` of one lane; from the fifth group on,
    /// the message word is scheduled first (into the oldest slot).
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn rounds4(lane: &mut Lane, i: usize) {
        let word = if i < 4 {
            lane.w[i]
        } else {
            let (w0, w1, w2, w3) = (lane.w[i % 4], lane.w[(i + 1) % 4], lane.w[(i + 2) % 4], lane.w[(i + 3) % 4]);
            let t1 = _mm_sha256msg1_epu32(w0, w1);
            let t2 = _mm_alignr_epi8(w3, w2, 4);
            let next = _mm_sha256msg2_epu32(_mm_add_epi32(t1, t2), w3);
            lane.w[i % 4] = next;
            next
        };
        let k = _mm_set_epi32(
            K32[4 * i + 3] as i32,
            K32[4 * i + 2] as i32,
            K32[4 * i + 1] as i32,
            K32[4 * i] as i32,
        );
        let t1 = _mm_add_epi32(word, k);
        lane.cdgh = _mm_sha256rnds2_epu32(lane.cdgh, lane.abef, t1);
        let t2 = _mm_shuffle_epi32(t1, 0x0E);
        lane.abef = _mm_sha256rnds2_epu32(lane.abef, lane.cdgh, t2);
    }

    /// # Safety
    /// The CPU must have the `sha`, `sse2`, `ssse3` and `sse4.1` features.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub unsafe fn compress2(a: &mut [u32; 8], block_a: &[u8; BLOCK], b: &mut [u32; 8], block_b: &[u8; BLOCK]) {
        // SAFETY (every call below): this function has the same features enabled.
        let (mut lane_a, mut lane_b) = unsafe { (load(a, block_a), load(b, block_b)) };
        let start_a = (lane_a.abef, lane_a.cdgh);
        let start_b = (lane_b.abef, lane_b.cdgh);
        for i in 0..16 {
            unsafe {
                rounds4(&mut lane_a, i);
                rounds4(&mut lane_b, i);
            }
        }
        unsafe {
            store(&lane_a, start_a, a);
            store(&lane_b, start_b, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(seed: u8) -> [u8; BLOCK] {
        std::array::from_fn(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
    }

    #[test]
    fn two_at_once_is_two_one_at_a_time() {
        let mut state_a = IV;
        let mut state_b = IV.map(|w: u32| w.rotate_left(7));
        for round in 0..50u8 {
            let (block_a, block_b) = (block(round), block(round.wrapping_mul(7).wrapping_add(1)));
            let (mut expected_a, mut expected_b) = (state_a, state_b);
            compress(&mut expected_a, &block_a);
            compress(&mut expected_b, &block_b);
            compress2(&mut state_a, &block_a, &mut state_b, &block_b);
            assert_eq!((state_a, state_b), (expected_a, expected_b), "round {round}");
        }
    }
}
