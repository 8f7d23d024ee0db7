//! rsync's weak rolling checksum ("checksum1").
//!
//! rsync sums the bytes as *signed* chars: `s1 = Σ x_i`, `s2 = Σ (n - i)·x_i`, both kept modulo
//! 2^32 and combined as `(s1 & 0xffff) | (s2 << 16)`. Only the low 16 bits of each half survive,
//! which is what makes the O(1) roll possible.

/// Value of one byte as rsync sees it: a sign-extended `char`.
#[inline(always)]
fn signed(b: u8) -> u32 {
    b as i8 as i32 as u32
}

/// The weak checksum of `data`, exactly as rsync's `get_checksum1`.
pub fn checksum1(data: &[u8]) -> u32 {
    let (s1, s2) = sums(data);
    combine(s1, s2)
}

#[inline(always)]
fn combine(s1: u32, s2: u32) -> u32 {
    (s1 & 0xffff) | (s2 << 16)
}

/// Both halves, unmasked. Uses AVX2 when the CPU has it (chosen at run time, so one binary
/// serves every x86-64 machine); the portable version is the same code.
fn sums(data: &[u8]) -> (u32, u32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { sums_avx2(data) };
        }
    }
    sums_portable(data)
}

/// [`sums_portable`]'s lane scheme with explicit AVX2: 32 lanes as four vectors of eight.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sums_avx2(data: &[u8]) -> (u32, u32) {
    // SAFETY: pointer offsets stay within `data` (whole chunks only) and the lane arrays;
    // unaligned loads and stores are used throughout.
    unsafe {
        use std::arch::x86_64::*;
        const LANES: usize = 32;
        let mut a = [_mm256_setzero_si256(); 4];
        let mut p = [_mm256_setzero_si256(); 4];
        let chunks = data.len() / LANES;
        for c in 0..chunks {
            let base = data.as_ptr().add(c * LANES);
            for k in 0..4 {
                p[k] = _mm256_add_epi32(p[k], a[k]);
                // Eight bytes, sign-extended to eight 32-bit lanes (rsync sums signed chars).
                let bytes = _mm_loadl_epi64(base.add(k * 8) as *const __m128i);
                a[k] = _mm256_add_epi32(a[k], _mm256_cvtepi8_epi32(bytes));
            }
        }
        let mut lanes_a = [0u32; LANES];
        let mut lanes_p = [0u32; LANES];
        for k in 0..4 {
            _mm256_storeu_si256(lanes_a.as_mut_ptr().add(k * 8) as *mut __m256i, a[k]);
            _mm256_storeu_si256(lanes_p.as_mut_ptr().add(k * 8) as *mut __m256i, p[k]);
        }
        let mut s1: u32 = 0;
        let mut s2: u32 = 0;
        for j in 0..LANES {
            s1 = s1.wrapping_add(lanes_a[j]);
            s2 = s2
                .wrapping_add(lanes_p[j].wrapping_mul(LANES as u32))
                .wrapping_add(lanes_a[j].wrapping_mul((LANES - j) as u32));
        }
        for &b in &data[chunks * LANES..] {
            s1 = s1.wrapping_add(signed(b));
            s2 = s2.wrapping_add(s1);
        }
        (s1, s2)
    }
}

/// Both halves, computed lane-wise so the compiler can vectorise without multiplications.
///
/// Over 32-byte chunks `c`, `s2 = Σ_c (32·S1_before(c) + Σ_j (32 - j)·x[c][j])`. Keeping per-lane
/// totals `a[j] = Σ_c x[c][j]` and `p[j] = Σ_c a_before(c)[j]` gives
/// `s1 = Σ_j a[j]` and `s2 = 32·Σ_j p[j] + Σ_j (32 - j)·a[j]`, all modulo 2^32.
#[inline(always)]
fn sums_portable(data: &[u8]) -> (u32, u32) {
    const LANES: usize = 32;
    let mut a = [0u32; LANES];
    let mut p = [0u32; LANES];
    let mut chunks = data.chunks_exact(LANES);
    for chunk in &mut chunks {
        for j in 0..LANES {
            p[j] = p[j].wrapping_add(a[j]);
        }
        for j in 0..LANES {
            a[j] = a[j].wrapping_add(signed(chunk[j]));
        }
    }
    let mut s1: u32 = 0;
    let mut s2: u32 = 0;
    for j in 0..LANES {
        s1 = s1.wrapping_add(a[j]);
        s2 = s2
            .wrapping_add(p[j].wrapping_mul(LANES as u32))
            .wrapping_add(a[j].wrapping_mul((LANES - j) as u32));
    }
    for &b in chunks.remainder() {
        s1 = s1.wrapping_add(signed(b));
        s2 = s2.wrapping_add(s1);
    }
    (s1, s2)
}

/// A rolling window over the last `len` bytes with O(1) [`Rolling::roll`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rolling {
    s1: u32,
    s2: u32,
    len: u32,
}

impl Rolling {
    /// Start a window covering all of `data`.
    pub fn new(data: &[u8]) -> Self {
        let (s1, s2) = sums(data);
        Rolling {
            s1,
            s2,
            len: data.len() as u32,
        }
    }

    /// The current checksum, as rsync sends it on the wire.
    #[inline(always)]
    pub fn digest(&self) -> u32 {
        combine(self.s1, self.s2)
    }

    /// Number of bytes in the window.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True when the window is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slide the window one byte: drop `out` from the front, append `inb` at the back.
    #[inline(always)]
    pub fn roll(&mut self, out: u8, inb: u8) {
        let o = signed(out);
        self.s1 = self.s1.wrapping_sub(o).wrapping_add(signed(inb));
        self.s2 = self
            .s2
            .wrapping_sub(self.len.wrapping_mul(o))
            .wrapping_add(self.s1);
    }

    /// Drop `out` from the front, shrinking the window (used at end of file).
    #[inline(always)]
    pub fn shrink(&mut self, out: u8) {
        let o = signed(out);
        self.s1 = self.s1.wrapping_sub(o);
        self.s2 = self.s2.wrapping_sub(self.len.wrapping_mul(o));
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straight transcription of the definition, for comparison.
    fn naive(data: &[u8]) -> u32 {
        let (mut s1, mut s2) = (0u32, 0u32);
        for &b in data {
            s1 = s1.wrapping_add(b as i8 as i32 as u32);
            s2 = s2.wrapping_add(s1);
        }
        (s1 & 0xffff) | (s2 << 16)
    }

    #[test]
    fn known_values() {
        // (input, expected) — computed from the definition with signed chars.
        let cases: &[(&[u8], u32)] = &[
            (b"", 0),
            (b"a", 0x0061_0061),
            (
                b"abc",
                (0x61 + 0x62 + 0x63) | ((0x61 * 3 + 0x62 * 2 + 0x63) << 16),
            ),
            (&[0xff], 0xffff_ffff),
            (&[0x80, 0x01], naive(&[0x80, 0x01])),
        ];
        for (input, want) in cases {
            assert_eq!(checksum1(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn bulk_matches_naive_and_roll() {
        let data: Vec<u8> = (0..5000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for len in [0usize, 1, 31, 32, 33, 64, 700, 1000] {
            assert_eq!(checksum1(&data[..len]), naive(&data[..len]));
            let mut r = Rolling::new(&data[..len]);
            if len == 0 {
                continue;
            }
            for start in 1..200 {
                r.roll(data[start - 1], data[start + len - 1]);
                assert_eq!(
                    r.digest(),
                    naive(&data[start..start + len]),
                    "len {len} start {start}"
                );
            }
            let mut s = Rolling::new(&data[..len]);
            for cut in 1..len.min(40) {
                s.shrink(data[cut - 1]);
                assert_eq!(s.digest(), naive(&data[cut..len]));
            }
        }
    }

    #[test]
    fn lane_sums_match_the_definition() {
        let mut x: u32 = 12345;
        for len in [0usize, 1, 31, 32, 33, 64, 100, 700, 4097] {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    (x >> 16) as u8
                })
                .collect();
            let (mut s1, mut s2) = (0u32, 0u32);
            for &b in &data {
                s1 = s1.wrapping_add(b as i8 as i32 as u32);
                s2 = s2.wrapping_add(s1);
            }
            assert_eq!(sums(&data), (s1, s2), "len {len}");
        }
    }
}
