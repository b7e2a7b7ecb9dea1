//! The fuzzer's random numbers: splitmix64, so that one printed seed
//! replays the same sequence of choices.

use alloc::vec::Vec;

/// splitmix64: a 64-bit state, one addition and a mix per number.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next() as u8;
        }
    }

    /// A length biased toward the interesting ones: 0, 1, exactly `size`,
    /// one off `size`, or anything up to `max`.
    pub fn len_around(&mut self, size: usize, max: usize) -> usize {
        match self.below(8) {
            0 => 0,
            1 => 1,
            2..=4 => size,
            5 => size - 1,
            6 => size + 1,
            _ => self.below(max as u64 + 1) as usize,
        }
    }

    /// A fresh seed for a sub-generator (a child process's).
    pub fn fork_seed(&mut self) -> u64 {
        self.next() ^ 0xD1B5_4A32_D192_ED03
    }
}
