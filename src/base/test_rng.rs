//! A deterministic pseudo-random source for unit tests that feed decoders
//! bounded random and mutated input (xorshift64*; no dependency).

/// The generator; its field is the state (the seed, never 0).
pub(crate) struct Rng(pub u64);

impl Rng {
    /// The next value of the sequence.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
