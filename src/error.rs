//! The crate's one error type.

use std::fmt;

/// What went wrong in a heapscope call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// An owner name was empty, too long, or contained a character owners cannot have.
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// Every owner id is in use (live owners, or retired ones still holding bytes).
    RegistryFull {
        /// How many owners the registry holds.
        capacity: usize,
    },
    /// A child would be nested deeper than owners may nest.
    TooDeep {
        /// The parent that cannot take another level.
        parent: String,
        /// The deepest nesting allowed below the process.
        max_depth: usize,
    },
    /// The owner handle refers to an owner that was retired.
    Stale,
    /// The reserved owners (root, overflow, internal) cannot be retired or moved.
    Reserved {
        /// The reserved owner's name.
        name: &'static str,
    },
    /// Pressure thresholds that are not `0 < elevated < high < critical <= 1`.
    InvalidThresholds {
        /// Which threshold is out of place: `"elevated"`, `"high"` or `"critical"`.
        which: &'static str,
        /// Its value, as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An environment variable the caller named holds a value that cannot be used.
    InvalidEnv {
        /// The variable's name.
        variable: String,
        /// Its value (lossily decoded when not UTF-8).
        value: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A bound of a sampler or a watch was outside what heapscope allows.
    OutOfBounds {
        /// The setting.
        what: &'static str,
        /// Its value, as given.
        value: String,
        /// The allowed range.
        allowed: &'static str,
    },
    /// A path heapscope will not write through: a link, a FIFO or file where a fresh name was
    /// needed, a directory others can write to or that belongs to another user.
    UnsafePath {
        /// The path.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No heap profile can be taken in this process (see `heapscope::profiling::status`).
    ProfilingUnavailable {
        /// Why.
        reason: String,
        /// What to change to get one.
        fix: String,
    },
    /// A signal trigger could not be set up.
    Signal {
        /// The signal number.
        signal: i32,
        /// Why.
        message: String,
    },
    /// A file system operation failed.
    Io {
        /// The path it failed on.
        path: std::path::PathBuf,
        /// What heapscope was doing (`create`, `write`, `sync`, `publish`, …).
        action: &'static str,
        /// The I/O error's kind.
        kind: std::io::ErrorKind,
        /// The I/O error's message.
        message: String,
    },
    /// A diagnostics bundle's cap ([`CaptureOptions::max_bytes`](crate::CaptureOptions::max_bytes))
    /// cannot hold its report, the one file a bundle cannot do without, and 8 KiB after it
    /// for the README (the privacy notice) and the manifest.
    BundleCapTooSmall {
        /// The cap, in bytes.
        max_bytes: u64,
        /// The size of the report the bundle had to hold, in bytes.
        report_bytes: u64,
    },
    /// Moving an owner under one of its own descendants.
    WouldCycle {
        /// The owner being moved.
        owner: String,
        /// The new parent that lies below it.
        new_parent: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidName { name, reason } => {
                write!(f, "heapscope: invalid owner name {name:?}: {reason}")
            }
            Error::RegistryFull { capacity } => write!(
                f,
                "heapscope: owner registry full ({capacity} owners); retire children that are \
                 no longer needed"
            ),
            Error::TooDeep { parent, max_depth } => write!(
                f,
                "heapscope: owner {parent:?} cannot have children: owners nest at most \
                 {max_depth} deep"
            ),
            Error::Stale => write!(f, "heapscope: the owner was retired"),
            Error::Reserved { name } => {
                write!(f, "heapscope: the reserved owner {name:?} cannot be retired or moved")
            }
            Error::InvalidThresholds { which, value, reason } => {
                write!(f, "heapscope: invalid pressure threshold {which} = {value}: {reason}")
            }
            Error::InvalidEnv { variable, value, expected } => {
                write!(
                    f,
                    "heapscope: environment variable {variable}={value:?}: expected {expected}"
                )
            }
            Error::OutOfBounds { what, value, allowed } => {
                write!(f, "heapscope: {what} = {value} is out of bounds (allowed: {allowed})")
            }
            Error::UnsafePath { path, reason } => {
                write!(f, "heapscope: refusing to write {}: it {reason}", path.display())
            }
            Error::ProfilingUnavailable { reason, fix } => {
                write!(f, "heapscope: no heap profile can be taken: {reason}; to get one: {fix}")
            }
            Error::Signal { signal, message } => {
                write!(f, "heapscope: cannot trigger on signal {signal}: {message}")
            }
            Error::Io { path, action, message, .. } => {
                write!(f, "heapscope: cannot {action} {}: {message}", path.display())
            }
            Error::BundleCapTooSmall { max_bytes, report_bytes } => write!(
                f,
                "heapscope: a bundle capped at {max_bytes} bytes cannot hold its report \
                 ({report_bytes} bytes) and 8 KiB for its README and manifest; raise \
                 CaptureOptions::max_bytes"
            ),
            Error::WouldCycle { owner, new_parent } => write!(
                f,
                "heapscope: cannot move {owner:?} under its own descendant {new_parent:?}"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// `Result` with heapscope's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
