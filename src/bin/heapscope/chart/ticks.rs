//! Axis ticks people can read: seconds in steps of 1, 2 or 5 × 10ⁿ, and bytes in whole steps
//! of one binary unit (`20 MiB`, `40 MiB`, …), never decimal megabytes.

/// The smallest step of the form 1, 2 or 5 × 10ⁿ (and 25 × 10ⁿ when `quarters`) that is at
/// least `raw`.
fn nice_step(raw: f64, quarters: bool) -> f64 {
    if !(raw > 0.0 && raw.is_finite()) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let quarter = if quarters && magnitude >= 10.0 { 2.5 } else { 2.0 };
    [1.0, 2.0, quarter, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw * 0.999_999)
        .unwrap_or(10.0 * magnitude)
}

/// One labelled tick: its value in the axis's own unit (seconds or bytes) and its label.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tick {
    pub(crate) value: f64,
    pub(crate) label: String,
}

/// Ticks from `start_s` up to `end_s` seconds, about `target` of them, at whole steps (the
/// axis starts later than 0 when a full sampler ring dropped the first samples).
pub(crate) fn time_ticks(start_s: f64, end_s: f64, target: usize) -> Vec<Tick> {
    let step = nice_step((end_s - start_s).max(1e-3) / target.max(1) as f64, false);
    let decimals = if step >= 1.0 { 0 } else { (-step.log10().floor()) as usize };
    let first = (start_s / step - 1e-9).ceil().max(0.0) as usize;
    let last = (end_s / step + 1e-9).floor() as usize;
    (first..=last)
        .map(|i| {
            let value = i as f64 * step;
            Tick { value, label: format!("{value:.decimals$} s") }
        })
        .collect()
}

/// Ticks from 0 to at least `max_bytes`, at most about `target` of them, in the largest binary
/// unit that keeps the step whole; the last tick is the axis end.
pub(crate) fn byte_ticks(max_bytes: f64, target: usize) -> Vec<Tick> {
    const UNITS: [(&str, f64); 5] = [
        ("B", 1.0),
        ("KiB", 1024.0),
        ("MiB", 1048576.0),
        ("GiB", 1073741824.0),
        ("TiB", 1099511627776.0),
    ];
    let max_bytes = max_bytes.max(1.0);
    let (unit, factor) =
        UNITS.iter().rev().copied().find(|&(_, f)| max_bytes / f >= 2.0).unwrap_or(UNITS[0]);
    let step = nice_step(max_bytes / factor / target.max(1) as f64, true).max(if factor == 1.0 {
        1.0
    } else {
        0.1
    });
    let decimals = if step >= 1.0 { 0 } else { 1 };
    let count = (max_bytes / factor / step - 1e-9).ceil().max(1.0) as usize;
    (0..=count)
        .map(|i| {
            let value = i as f64 * step;
            let label = if i == 0 { "0".to_owned() } else { format!("{value:.decimals$} {unit}") };
            Tick { value: value * factor, label }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(ticks: &[Tick]) -> Vec<&str> {
        ticks.iter().map(|t| t.label.as_str()).collect()
    }

    #[test]
    fn steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(0.7, false), 1.0);
        assert_eq!(nice_step(1.0, false), 1.0);
        assert_eq!(nice_step(1.3, false), 2.0);
        assert_eq!(nice_step(3.0, false), 5.0);
        assert_eq!(nice_step(7.0, false), 10.0);
        assert_eq!(nice_step(0.03, false), 0.05);
        assert_eq!(nice_step(0.0, false), 1.0);
        assert_eq!(nice_step(23.7, false), 50.0);
        assert_eq!(nice_step(23.7, true), 25.0);
        assert_eq!(nice_step(2.37, true), 5.0, "no 2.5: labels stay whole");
    }

    #[test]
    fn seconds_stop_at_the_span() {
        assert_eq!(labels(&time_ticks(0.0, 8.2, 8)), ["0 s", "2 s", "4 s", "6 s", "8 s"]);
        assert_eq!(
            labels(&time_ticks(0.0, 0.26, 6)),
            ["0.00 s", "0.05 s", "0.10 s", "0.15 s", "0.20 s", "0.25 s"]
        );
        assert_eq!(labels(&time_ticks(0.0, 4.0, 4)), ["0 s", "1 s", "2 s", "3 s", "4 s"]);
        // An axis that starts late (a full ring dropped the first samples): whole steps within.
        assert_eq!(
            labels(&time_ticks(3600.0, 3660.0, 6)),
            ["3600 s", "3610 s", "3620 s", "3630 s", "3640 s", "3650 s", "3660 s"]
        );
        assert_eq!(
            labels(&time_ticks(3601.3, 3609.9, 8)),
            ["3602 s", "3604 s", "3606 s", "3608 s"]
        );
    }

    #[test]
    fn bytes_step_in_whole_binary_units() {
        let ticks = byte_ticks(130.0 * 1048576.0, 6);
        assert_eq!(
            labels(&ticks),
            ["0", "25 MiB", "50 MiB", "75 MiB", "100 MiB", "125 MiB", "150 MiB"]
        );
        assert_eq!(ticks[6].value, 150.0 * 1048576.0);
        assert_eq!(
            labels(&byte_ticks(15.3 * 1048576.0, 6)),
            ["0", "5 MiB", "10 MiB", "15 MiB", "20 MiB"]
        );
        assert_eq!(labels(&byte_ticks(3.0 * 1073741824.0, 3)), ["0", "1 GiB", "2 GiB", "3 GiB"]);
        assert_eq!(labels(&byte_ticks(3.0 * 1073741824.0, 6))[1], "0.5 GiB");
        assert_eq!(labels(&byte_ticks(1.5 * 1048576.0, 4))[1], "500 KiB");
        assert_eq!(labels(&byte_ticks(3.0, 4)), ["0", "1 B", "2 B", "3 B"]);
    }
}
