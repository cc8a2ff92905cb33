//! Randomness for the vault, always from the operating system's generator
//! (getrandom, through the AEAD crate): research IDs, date offsets, salts,
//! nonces and cohort secrets must not be predictable or derived from
//! anything about the patient.

use std::ops::RangeInclusive;

use anyhow::{Context, ensure};
use chacha20poly1305::aead::Generate;

/// `N` random bytes.
pub(super) fn bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    <[u8; N]>::try_generate()
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("reading the operating system's random generator")
}

/// A uniform random number in `0..n` (`n > 0`), by rejection so that no
/// value is more likely than another.
pub(super) fn below(n: u64) -> anyhow::Result<u64> {
    ensure!(n > 0, "empty random range");
    // The largest multiple of n that fits; draws at or above it are redrawn.
    let zone = u64::MAX - (u64::MAX % n);
    loop {
        let draw = u64::from_le_bytes(bytes::<8>()?);
        if draw < zone {
            return Ok(draw % n);
        }
    }
}

/// A uniform random number in `range` (not empty).
pub(super) fn in_range(range: &RangeInclusive<i32>) -> anyhow::Result<i32> {
    let (start, end) = (i64::from(*range.start()), i64::from(*range.end()));
    ensure!(start <= end, "empty random range");
    let offset = below((end - start + 1) as u64)?;
    Ok((start + offset as i64) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_stay_in_range_and_vary() {
        for _ in 0..1000 {
            assert!(below(7).unwrap() < 7);
            let x = in_range(&(-5..=-3)).unwrap();
            assert!((-5..=-3).contains(&x));
        }
        assert_eq!(in_range(&(i32::MIN..=i32::MIN)).unwrap(), i32::MIN);
        assert!(in_range(&(i32::MIN..=i32::MAX)).is_ok());
        assert_ne!(bytes::<32>().unwrap(), bytes::<32>().unwrap());
        assert!(below(0).is_err());
    }
}
