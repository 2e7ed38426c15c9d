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
/// Defaults: 0.70, 0.85, 0.95. Always `0 < elevated < high < critical <= 1`.
///
/// ```
/// use heapscope::Thresholds;
/// let t = Thresholds::new(0.5, 0.8, 0.9).unwrap();
/// assert!(Thresholds::new(0.9, 0.8, 0.95).is_err());
/// assert_eq!(Thresholds::default(), Thresholds::new(0.70, 0.85, 0.95).unwrap());
/// # let _ = t;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    elevated: f64,
    high: f64,
    critical: f64,
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
        }
        if high <= elevated {
            return bad("high", high, "must be above elevated");
        }
        if critical <= high {
            return bad("critical", critical, "must be above high");
        }
        Ok(Thresholds { elevated, high, critical })
    }

    /// The `elevated` fraction.
    ///
    /// ```
    /// assert_eq!(heapscope::Thresholds::default().elevated(), 0.70);
    /// ```
    pub fn elevated(&self) -> f64 {
        self.elevated
    }

    /// The `high` fraction.
    ///
    /// ```
    /// assert_eq!(heapscope::Thresholds::default().high(), 0.85);
    /// ```
    pub fn high(&self) -> f64 {
        self.high
    }

    /// The `critical` fraction.
    ///
    /// ```
    /// assert_eq!(heapscope::Thresholds::default().critical(), 0.95);
    /// ```
    pub fn critical(&self) -> f64 {
        self.critical
    }

    /// The level of `used` bytes against `limit` bytes; `Unknown` without a usable limit.
    ///
    /// ```
    /// use heapscope::{PressureLevel, Thresholds};
    /// let t = Thresholds::default();
    /// assert_eq!(t.classify(69, Some(100)), PressureLevel::Normal);
    /// assert_eq!(t.classify(70, Some(100)), PressureLevel::Elevated);
    /// assert_eq!(t.classify(99, Some(100)), PressureLevel::Critical);
    /// assert_eq!(t.classify(99, None), PressureLevel::Unknown);
    /// ```
    pub fn classify(&self, used: u64, limit: Option<u64>) -> PressureLevel {
        let Some(limit) = limit.filter(|&l| l > 0) else { return PressureLevel::Unknown };
        // Integer comparisons at the boundaries: used >= threshold * limit.
        let at_least = |fraction: f64| used as f64 >= fraction * limit as f64;
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
}
