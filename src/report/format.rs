//! Numbers in words for report.md.

use super::charts::byte_unit;

/// Bytes in the unit that suits them.
pub fn bytes_text(v: Option<f64>) -> String {
    match v {
        Some(b) => {
            let (div, unit) = byte_unit(b);
            if div == 1.0 {
                format!("{b:.0} bytes")
            } else {
                format!("{:.2} {unit}", b / div)
            }
        }
        None => "-".into(),
    }
}
