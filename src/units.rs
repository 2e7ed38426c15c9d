//! Byte sizes as people write them: base 1024, labelled KiB, MiB, GiB.

/// `bytes` as `"512 B"`, `"1.5 KiB"`, `"3.0 GiB"` (base 1024, one decimal).
///
/// ```
/// assert_eq!(heapscope::format_bytes(1536), "1.5 KiB");
/// assert_eq!(heapscope::format_bytes(512), "512 B");
/// ```
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    // On the value as printed (one decimal): 1 048 575 bytes is "1.0 MiB", not "1024.0 KiB".
    while (value * 10.0).round() >= 10240.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Parses `"4096"`, `"512B"`, `"64KiB"`, `"256MiB"`, `"2GiB"` (whole numbers, base 1024).
///
/// # Errors
/// A message naming the text when it is not a whole number with one of those units, or
/// overflows.
///
/// ```
/// assert_eq!(heapscope::parse_bytes("256MiB"), Ok(256 << 20));
/// assert!(heapscope::parse_bytes("1.5GB").is_err());
/// ```
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("not a size: {text:?}"))?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => {
            return Err(format!("unknown unit {other:?} in {text:?} (use B, KiB, MiB or GiB)"))
        }
    };
    number.checked_mul(factor).ok_or_else(|| format!("too large: {text:?}"))
}

/// `after - before` as a signed change, clamped to `i64`: the numbers may come from files,
/// which can hold anything up to `u64::MAX`, where `as i64` would flip the sign (and the
/// subtraction overflow).
pub(crate) fn signed_change(before: u64, after: u64) -> i64 {
    let change = i128::from(after) - i128::from(before);
    change.clamp(i64::MIN.into(), i64::MAX.into()) as i64
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_unit_is_chosen_on_the_rounded_value() {
        assert_eq!(super::format_bytes(1_048_575), "1.0 MiB");
        assert_eq!(super::format_bytes(1_048_524), "1023.9 KiB");
        assert_eq!(super::format_bytes(1023), "1023 B");
        assert_eq!(super::format_bytes(1024), "1.0 KiB");
    }

    #[test]
    fn a_signed_change_beyond_i64_is_clamped_with_its_sign() {
        use super::signed_change;
        assert_eq!(signed_change(10, 4), -6);
        assert_eq!(signed_change(1, 1 << 63), i64::MAX);
        assert_eq!(signed_change(u64::MAX, 0), i64::MIN);
        assert_eq!(signed_change(0, i64::MAX as u64), i64::MAX);
    }
}
