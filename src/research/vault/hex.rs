//! Lowercase hexadecimal for the few binary values the vault writes as
//! text (salt, key check, cohort secrets, key files).

use anyhow::{Context, ensure};
use zeroize::Zeroizing;

/// Lowercase hex of `bytes`.
pub(super) fn encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Exactly `N` bytes from `2 * N` hex digits (either case); the result is
/// wiped when dropped, since it is often key material.
pub(super) fn decode<const N: usize>(text: &str) -> anyhow::Result<Zeroizing<[u8; N]>> {
    ensure!(
        text.len() == 2 * N,
        "expected {} hexadecimal digits, found {} characters",
        2 * N,
        text.len()
    );
    ensure!(
        text.bytes().all(|b| b.is_ascii_hexdigit()),
        "not hexadecimal"
    );
    let mut out = Zeroizing::new([0u8; N]);
    for (i, pair) in text.as_bytes().chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).context("not hexadecimal")?;
        out[i] = u8::from_str_radix(pair, 16).context("not hexadecimal")?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_bad_text() {
        assert_eq!(encode(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(*decode::<3>("00AB10").unwrap(), [0, 0xab, 0x10]);
        assert!(decode::<3>("00ab1").is_err());
        assert!(decode::<2>("zz00").is_err());
        assert!(decode::<2>("+f00").is_err());
    }
}
