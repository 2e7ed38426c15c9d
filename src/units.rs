//! Byte sizes as people write them: base 1024, labelled KiB, MiB, GiB, TiB.

/// `bytes` as `"512 B"`, `"1.5 KiB"`, `"3.0 GiB"` (base 1024, one decimal).
///
/// ```
/// # heapscope::install!();
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

/// Parses `"4096"`, `"512B"`, `"64KiB"`, `"256MiB"`, `"2GiB"`, `"1TiB"` (base 1024), also
/// with a decimal fraction and a space, as [`format_bytes`] prints them: `"1.5 GiB"` (a
/// fraction of a byte is dropped).
///
/// # Errors
/// A message naming the text when it is not a number with one of those units, or overflows.
///
/// ```
/// # heapscope::install!();
/// assert_eq!(heapscope::parse_bytes("256MiB"), Ok(256 << 20));
/// assert_eq!(heapscope::parse_bytes("1.5 KiB"), Ok(1536));
/// assert!(heapscope::parse_bytes("1.5GB").is_err());
/// ```
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let not_a_size = || format!("not a size: {text:?}");
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) if !fraction.is_empty() => (whole, fraction),
        Some(_) => return Err(not_a_size()),
        None => (number, ""),
    };
    // Digits only on both sides of the point, as many decimals as written.
    if whole.is_empty() || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_size());
    }
    let whole: u64 = whole.parse().map_err(|_| not_a_size())?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        other => {
            return Err(format!("unknown unit {other:?} in {text:?} (use B, KiB, MiB, GiB or TiB)"))
        }
    };
    // `0.fraction` times the unit, rounded down: multiplied digit by digit from the last, as
    // on paper, what carries past the point is the whole bytes. Exact for any number of
    // decimals (the carry stays below the unit, at most 2^40); reading them as one integer
    // over 10^len once refused more than 18 ("not a size").
    let fraction_bytes = fraction
        .bytes()
        .rev()
        .fold(0u64, |carry, digit| (u64::from(digit - b'0') * factor + carry) / 10);
    let bytes = u128::from(whole) * u128::from(factor) + u128::from(fraction_bytes);
    u64::try_from(bytes).map_err(|_| format!("too large: {text:?}"))
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

    /// What `format_bytes` prints parses back to within its rounding (half a tenth of the
    /// unit): `TiB` and decimals were refused ("unknown unit", "not a size").
    #[test]
    fn printed_sizes_parse_back() {
        use super::{format_bytes, parse_bytes};
        assert_eq!(parse_bytes("1.5 KiB"), Ok(1536));
        assert_eq!(parse_bytes("2TiB"), Ok(2 << 40));
        assert_eq!(parse_bytes("0.1 KiB"), Ok(102));
        assert_eq!(parse_bytes("16 EiB").map_err(|e| e.contains("unknown unit")), Err(true));
        assert_eq!(parse_bytes("16777216 TiB").map_err(|e| e.contains("too large")), Err(true));
        for bad in ["", ".5 KiB", "1. KiB", "1.2.3 KiB", "1.x KiB", "-1 KiB", "KiB"] {
            assert!(parse_bytes(bad).is_err(), "{bad:?} was accepted");
        }
        for bytes in [0, 1023, 1024, 1536, 1_048_575, 5 << 30, 3 << 40, u64::MAX >> 4] {
            let printed = format_bytes(bytes);
            let parsed = parse_bytes(&printed).unwrap();
            let unit = 1u64
                << (10
                    * ["B", "KiB", "MiB", "GiB", "TiB"]
                        .iter()
                        .position(|u| printed.ends_with(&format!(" {u}")))
                        .unwrap());
            assert!(parsed.abs_diff(bytes) <= unit / 20, "{bytes} -> {printed} -> {parsed}");
        }
    }

    /// A size written with more than 18 decimals is a size all the same, read exactly:
    /// "0.0000000000000000001 TiB" (a ten-millionth of a byte) is 0 bytes, the fraction of a
    /// byte dropped, "1.0000000000000000000 KiB" is 1024, and one byte in TiB (2^-40 TiB, 40
    /// decimals) is 1, a hair less 0. All were refused as "not a size".
    #[test]
    fn sizes_with_more_than_eighteen_decimals_parse() {
        use super::parse_bytes;
        assert_eq!(parse_bytes("0.0000000000000000001 TiB"), Ok(0));
        assert_eq!(parse_bytes("1.0000000000000000000 KiB"), Ok(1024));
        assert_eq!(parse_bytes("0.0000000000009094947017729282379150390625 TiB"), Ok(1));
        assert_eq!(parse_bytes("0.0000000000009094947017729282379150390624 TiB"), Ok(0));
        assert_eq!(parse_bytes("2.99999999999999999999999999 B"), Ok(2));
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
