//! WAL positions (LSNs): PostgreSQL prints them as `16/B374D848`; the tool keeps them as bytes.

/// A WAL position in bytes since the start of WAL.
pub type Lsn = u64;

/// `16/B374D848` -> bytes; None for anything else.
pub fn parse_lsn(text: &str) -> Option<Lsn> {
    let (hi, lo) = text.split_once('/')?;
    let hi = u32::from_str_radix(hi, 16).ok()?;
    let lo = u32::from_str_radix(lo, 16).ok()?;
    Some((u64::from(hi) << 32) | u64::from(lo))
}

/// Bytes -> `16/B374D848`, as PostgreSQL writes it.
pub fn format_lsn(lsn: Lsn) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_to_bytes_and_back() {
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("1/10"), Some((1 << 32) + 16));
        assert_eq!(format_lsn((1 << 32) + 16), "1/10");
        assert_eq!(parse_lsn("x"), None);
        assert_eq!(parse_lsn("1FFFFFFFF/0"), None, "the high part is 32 bits");
    }
}
