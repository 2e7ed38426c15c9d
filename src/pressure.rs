//! Memory pressure: how close the process is to its effective limit.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// How close to its limit the process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PressureLevel {
    /// Below the `elevated` threshold.
    Normal,
    /// At or above `elevated`.
    Elevated,
    /// At or above `high`.
    High,
    /// At or above `critical`.
    Critical,
    /// No limit is known, so no ratio can be computed.
    Unknown,
}

impl std::fmt::Display for PressureLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PressureLevel::Normal => "normal",
            PressureLevel::Elevated => "elevated",
            PressureLevel::High => "high",
            PressureLevel::Critical => "critical",
            PressureLevel::Unknown => "unknown",
        })
    }
}

/// Fractions of the effective limit at which pressure becomes elevated, high and critical.
///
/// Defaults: 0.70, 0.85, 0.95. Always `0 < elevated < high < critical <= 1`, also when read
/// with serde (checked as [`Thresholds::new`] checks them). Fractions count to nine decimal
/// places (whole parts per billion), so a level starts exactly at its decimal fraction of the
/// limit: 55 of 100 bytes is at 0.55.
///
/// ```
/// # heapscope::install!();
/// use heapscope::Thresholds;
/// let t = Thresholds::new(0.5, 0.8, 0.9).unwrap();
/// assert!(Thresholds::new(0.9, 0.8, 0.95).is_err());
/// assert_eq!(Thresholds::default(), Thresholds::new(0.70, 0.85, 0.95).unwrap());
/// # let _ = t;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedThresholds")]
pub struct Thresholds {
    elevated: f64,
    high: f64,
    critical: f64,
}

/// Thresholds as read by serde, checked by [`Thresholds::new`] before they become
/// [`Thresholds`] (deriving `Deserialize` took any three numbers, in any order).
#[derive(Deserialize)]
struct UncheckedThresholds {
    elevated: f64,
    high: f64,
    critical: f64,
}

impl TryFrom<UncheckedThresholds> for Thresholds {
    type Error = Error;

    fn try_from(t: UncheckedThresholds) -> Result<Thresholds> {
        Thresholds::new(t.elevated, t.high, t.critical)
    }
}

/// What a fraction is counted in: parts per billion, nine decimal places.
const PARTS_PER_WHOLE: u64 = 1_000_000_000;

/// `fraction` in whole parts per billion, rounded to the nearest. A fraction written with at
/// most nine decimals (0.55, whose `f64` is 0.55000000000000004…) is exactly that many parts.
fn parts_per_billion(fraction: f64) -> u64 {
    (fraction * PARTS_PER_WHOLE as f64).round() as u64
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { elevated: 0.70, high: 0.85, critical: 0.95 }
    }
}

impl Thresholds {
    /// Validated thresholds.
    ///
    /// # Errors
    /// [`Error::InvalidThresholds`] naming the first value that is not a number, not in
    /// `(0, 1]`, or not above the one before it.
    pub fn new(elevated: f64, high: f64, critical: f64) -> Result<Thresholds> {
        let bad = |which, value: f64, reason| {
            Err(Error::InvalidThresholds { which, value: value.to_string(), reason })
        };
        for (which, value) in [("elevated", elevated), ("high", high), ("critical", critical)] {
            if !value.is_finite() {
                return bad(which, value, "not a finite number");
            }
            if value <= 0.0 || value > 1.0 {
                return bad(which, value, "must be in (0, 1]");
            }
            // Compared as given: rounded to parts, 5e-10 was one part and slipped through.
            if value < 1.0 / PARTS_PER_WHOLE as f64 {
                return bad(which, value, "must be at least 0.000000001 (nine decimal places)");
            }
        }
        // Compared as classify counts them: two fractions within a billionth are one level.
        if parts_per_billion(high) <= parts_per_billion(elevated) {
            return bad("high", high, "must be above elevated");
        }
        if parts_per_billion(critical) <= parts_per_billion(high) {
            return bad("critical", critical, "must be above high");
        }
        Ok(Thresholds { elevated, high, critical })
    }

    /// The `elevated` fraction.
    ///
    /// ```
    /// # heapscope::install!();
    /// assert_eq!(heapscope::Thresholds::default().elevated(), 0.70);
    /// ```
    pub fn elevated(&self) -> f64 {
        self.elevated
    }

    /// The `high` fraction.
    ///
    /// ```
    /// # heapscope::install!();
    /// assert_eq!(heapscope::Thresholds::default().high(), 0.85);
    /// ```
    pub fn high(&self) -> f64 {
        self.high
    }

    /// The `critical` fraction.
    ///
    /// ```
    /// # heapscope::install!();
    /// assert_eq!(heapscope::Thresholds::default().critical(), 0.95);
    /// ```
    pub fn critical(&self) -> f64 {
        self.critical
    }

    /// The level of `used` bytes against `limit` bytes; `Unknown` without a usable limit.
    /// Exact at the boundaries: a level starts where `used` reaches its fraction of `limit`,
    /// counted to nine decimal places.
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::{PressureLevel, Thresholds};
    /// let t = Thresholds::default();
    /// assert_eq!(t.classify(69, Some(100)), PressureLevel::Normal);
    /// assert_eq!(t.classify(70, Some(100)), PressureLevel::Elevated);
    /// assert_eq!(t.classify(99, Some(100)), PressureLevel::Critical);
    /// assert_eq!(t.classify(99, None), PressureLevel::Unknown);
    /// let custom = Thresholds::new(0.55, 0.8, 0.9).unwrap();
    /// assert_eq!(custom.classify(55 << 20, Some(100 << 20)), PressureLevel::Elevated);
    /// ```
    pub fn classify(&self, used: u64, limit: Option<u64>) -> PressureLevel {
        let Some(limit) = limit.filter(|&l| l > 0) else { return PressureLevel::Unknown };
        // used / limit >= parts / PARTS_PER_WHOLE, cross-multiplied in integers: in floating
        // point, 0.55 * limit is a little above 55 % of it and exactly 55 % fell short. u128
        // holds both products (below 2^64 * 2^30).
        let at_least = |fraction: f64| {
            u128::from(used) * u128::from(PARTS_PER_WHOLE)
                >= u128::from(parts_per_billion(fraction)) * u128::from(limit)
        };
        if at_least(self.critical) {
            PressureLevel::Critical
        } else if at_least(self.high) {
            PressureLevel::High
        } else if at_least(self.elevated) {
            PressureLevel::Elevated
        } else {
            PressureLevel::Normal
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_bad_value() {
        let err = Thresholds::new(0.7, 0.6, 0.9).unwrap_err();
        assert_eq!(
            err,
            Error::InvalidThresholds {
                which: "high",
                value: "0.6".into(),
                reason: "must be above elevated"
            }
        );
        assert!(matches!(
            Thresholds::new(f64::NAN, 0.8, 0.9),
            Err(Error::InvalidThresholds { which: "elevated", .. })
        ));
        assert!(matches!(
            Thresholds::new(0.0, 0.8, 0.9),
            Err(Error::InvalidThresholds { which: "elevated", .. })
        ));
        assert!(matches!(
            Thresholds::new(0.5, 0.8, 1.5),
            Err(Error::InvalidThresholds { which: "critical", .. })
        ));
        assert!(matches!(
            Thresholds::new(0.5, 0.8, 0.8),
            Err(Error::InvalidThresholds { which: "critical", .. })
        ));
        assert!(matches!(
            Thresholds::new(0.5, f64::INFINITY, 0.8),
            Err(Error::InvalidThresholds { which: "high", .. })
        ));
        assert!(Thresholds::new(0.5, 0.8, 1.0).is_ok());
        // Below one billionth, also where rounding to parts would make it one part.
        for tiny in [1e-12, 5e-10, 9.99e-10] {
            assert!(matches!(
                Thresholds::new(tiny, 0.8, 0.9),
                Err(Error::InvalidThresholds { which: "elevated", .. })
            ));
        }
        assert!(Thresholds::new(1e-9, 0.8, 0.9).is_ok());
        assert!(matches!(
            Thresholds::new(0.5, 0.5000000001, 0.9),
            Err(Error::InvalidThresholds { which: "high", .. })
        ));
    }

    #[test]
    fn each_threshold_plus_and_minus_one() {
        let t = Thresholds::default();
        let limit = Some(1000);
        assert_eq!(t.classify(699, limit), PressureLevel::Normal);
        assert_eq!(t.classify(700, limit), PressureLevel::Elevated);
        assert_eq!(t.classify(849, limit), PressureLevel::Elevated);
        assert_eq!(t.classify(850, limit), PressureLevel::High);
        assert_eq!(t.classify(949, limit), PressureLevel::High);
        assert_eq!(t.classify(950, limit), PressureLevel::Critical);
        assert_eq!(t.classify(5000, limit), PressureLevel::Critical);
        assert_eq!(t.classify(0, Some(0)), PressureLevel::Unknown);
        assert_eq!(t.classify(10, None), PressureLevel::Unknown);
    }

    /// A level starts exactly at its fraction of the limit. The comparison in floating point
    /// missed it: 0.55 is stored as 0.55000000000000004…, so 55 % of 100 MiB stayed "normal".
    #[test]
    fn exactly_at_a_custom_threshold_is_that_level() {
        let t = Thresholds::new(0.55, 0.8, 0.9).unwrap();
        assert_eq!(t.classify(55 * (100 << 20) / 100, Some(100 << 20)), PressureLevel::Elevated);
        assert_eq!(t.classify(55, Some(100)), PressureLevel::Elevated);
        assert_eq!(t.classify(54, Some(100)), PressureLevel::Normal);
        let t = Thresholds::new(0.1, 0.2, 0.3).unwrap();
        for (used, level) in [(9, PressureLevel::Normal), (10, PressureLevel::Elevated)] {
            assert_eq!(t.classify(used, Some(100)), level);
        }
        assert_eq!(t.classify(30, Some(100)), PressureLevel::Critical);
        // The largest sizes do not overflow.
        assert_eq!(t.classify(u64::MAX, Some(u64::MAX)), PressureLevel::Critical);
        assert_eq!(
            Thresholds::default().classify(u64::MAX / 2, Some(u64::MAX)),
            PressureLevel::Normal
        );
    }

    /// Thresholds read with serde (from a config file, or a report) are checked as
    /// `Thresholds::new` checks them. They were taken as written: with critical 0.7 below
    /// elevated 0.95, 699 bytes of 1000 were `normal` and 700 `critical`, never in between.
    #[test]
    fn deserialized_thresholds_are_validated() {
        for text in [
            r#"{"elevated":0.95,"high":0.85,"critical":0.7}"#,
            r#"{"elevated":-1.0,"high":0.85,"critical":0.95}"#,
            r#"{"elevated":0.7,"high":0.85,"critical":2.0}"#,
            r#"{"elevated":0.0,"high":0.85,"critical":0.95}"#,
        ] {
            assert!(serde_json::from_str::<Thresholds>(text).is_err(), "accepted {text}");
        }
        let read: Thresholds =
            serde_json::from_str(r#"{"elevated":0.6,"high":0.8,"critical":0.9}"#).unwrap();
        assert_eq!(read, Thresholds::new(0.6, 0.8, 0.9).unwrap());
        let text = serde_json::to_string(&Thresholds::default()).unwrap();
        assert_eq!(serde_json::from_str::<Thresholds>(&text).unwrap(), Thresholds::default());
    }
}
