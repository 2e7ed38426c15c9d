//! A signal that asks for a diagnostics bundle (feature `signal`).
//!
//! The signal handler itself only records that the signal arrived (signal-hook's self-pipe);
//! a dedicated thread waits for it and runs [`capture`], which allocates, writes files and may
//! take a heap profile — none of which is allowed inside a handler. Signals that arrive while a
//! capture runs are merged into one more capture. A repeated signal cannot fill the disk: a
//! trigger writes at most [`max_bundles`](SignalTriggerBuilder::max_bundles) bundles, at least
//! a [`cooldown`](SignalTriggerBuilder::cooldown) apart, and says so when it refuses.
//!
//! Signals are a Unix facility: on other platforms the module compiles, and
//! [`SignalTriggerBuilder::start`] returns [`Error::Signal`] saying there is none to listen for.

#[cfg(unix)]
use crate::bundle::capture;
use crate::bundle::{Bundle, CaptureOptions};
use crate::error::{Error, Result};
#[cfg(unix)]
use signal_hook::iterator::{Handle, Signals};
use std::thread::JoinHandle;
use std::time::Duration;
#[cfg(unix)]
use std::time::Instant;

/// The signal [`SignalTrigger::start`] listens for: SIGUSR2.
#[cfg(unix)]
pub const DEFAULT_SIGNAL: i32 = signal_hook::consts::SIGUSR2;
/// The signal [`SignalTrigger::start`] listens for: SIGUSR2's number on Linux, on a platform
/// that has no signals (starting a trigger fails there).
#[cfg(not(unix))]
pub const DEFAULT_SIGNAL: i32 = 12;

/// What one signal did.
///
/// ```
/// # heapscope::install!();
/// use heapscope::signal::{SignalOutcome, SignalTrigger, DEFAULT_SIGNAL};
/// use std::{sync::mpsc, time::Duration};
/// let dir = std::env::temp_dir().join(format!("heapscope-doc-{}", std::process::id()));
/// let (sent, received) = mpsc::channel();
/// let trigger = SignalTrigger::builder(heapscope::CaptureOptions::new(&dir))
///     .max_bundles(1)
///     .on_capture(move |outcome| {
///         let _ = sent.send(outcome);
///     })
///     .start()?;
/// let next = || received.recv_timeout(Duration::from_secs(60)).expect("an outcome");
/// signal_hook::low_level::raise(DEFAULT_SIGNAL)?;
/// match next() {
///     SignalOutcome::Written(bundle) => assert!(bundle.directory.join("report.json").is_file()),
///     other => panic!("no bundle: {other:?}"),
/// }
/// // The one bundle allowed is written: the next signal is refused.
/// signal_hook::low_level::raise(DEFAULT_SIGNAL)?;
/// assert!(matches!(next(), SignalOutcome::CapReached { max_bundles: 1 }));
/// trigger.stop();
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum SignalOutcome {
    /// A bundle was written.
    Written(Bundle),
    /// The capture failed (nothing usable was written).
    Failed(Error),
    /// Ignored: the previous bundle was written less than the cooldown ago.
    CoolingDown {
        /// How long ago the previous capture finished.
        since_last: Duration,
    },
    /// Ignored: the trigger has written all the bundles it may.
    CapReached {
        /// The cap.
        max_bundles: u32,
    },
}

type OnCapture = Box<dyn FnMut(SignalOutcome) + Send>;

/// Settings for a [`SignalTrigger`]; from [`SignalTrigger::builder`].
///
/// ```
/// # heapscope::install!();
/// use heapscope::signal::SignalTrigger;
/// use std::time::Duration;
/// let dir = std::env::temp_dir().join(format!("heapscope-doc-{}", std::process::id()));
/// let builder = SignalTrigger::builder(heapscope::CaptureOptions::new(&dir))
///     .cooldown(Duration::from_secs(30))
///     .max_bundles(5);
/// assert!(format!("{builder:?}").contains("max_bundles: 5"));
/// let trigger = builder.start()?;
/// trigger.stop();
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), heapscope::Error>(())
/// ```
pub struct SignalTriggerBuilder {
    signal: i32,
    options: CaptureOptions,
    cooldown: Duration,
    max_bundles: u32,
    on_capture: OnCapture,
}

impl std::fmt::Debug for SignalTriggerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignalTriggerBuilder")
            .field("signal", &self.signal)
            .field("options", &self.options)
            .field("cooldown", &self.cooldown)
            .field("max_bundles", &self.max_bundles)
            .finish_non_exhaustive()
    }
}

impl SignalTriggerBuilder {
    /// The signal to listen for (default SIGUSR2).
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::signal::SignalTrigger;
    /// let trigger = SignalTrigger::builder(Default::default())
    ///     .signal(signal_hook::consts::SIGUSR1)
    ///     .on_capture(|_| {})
    ///     .start()?;
    /// assert_eq!(trigger.signal(), signal_hook::consts::SIGUSR1);
    /// trigger.stop();
    /// # Ok::<(), heapscope::Error>(())
    /// ```
    pub fn signal(mut self, signal: i32) -> Self {
        self.signal = signal;
        self
    }

    /// The shortest time from the end of one capture to the start of the next (default 10 s);
    /// signals sooner are ignored.
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::signal::{SignalOutcome, SignalTrigger, DEFAULT_SIGNAL};
    /// use std::{sync::mpsc, time::Duration};
    /// let dir = std::env::temp_dir().join(format!("heapscope-doc-{}", std::process::id()));
    /// let (sent, received) = mpsc::channel();
    /// let trigger = SignalTrigger::builder(heapscope::CaptureOptions::new(&dir))
    ///     .cooldown(Duration::from_secs(60))
    ///     .on_capture(move |outcome| {
    ///         let _ = sent.send(outcome);
    ///     })
    ///     .start()?;
    /// let next = || received.recv_timeout(Duration::from_secs(60)).expect("an outcome");
    /// signal_hook::low_level::raise(DEFAULT_SIGNAL)?;
    /// assert!(matches!(next(), SignalOutcome::Written(_)));
    /// // A second signal right after the first is ignored, and says how long ago the last was.
    /// signal_hook::low_level::raise(DEFAULT_SIGNAL)?;
    /// let SignalOutcome::CoolingDown { since_last } = next() else { panic!("not ignored") };
    /// assert!(since_last < Duration::from_secs(60));
    /// trigger.stop();
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// The most bundles this trigger writes (default 10; captures that fail do not count);
    /// later signals are refused ([`SignalOutcome::CapReached`]).
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::signal::SignalTrigger;
    /// let trigger = SignalTrigger::builder(Default::default()).max_bundles(3).start()?;
    /// trigger.stop();
    /// // A trigger that may write nothing is a mistake, refused at start.
    /// let none = SignalTrigger::builder(Default::default()).max_bundles(0).start();
    /// assert!(matches!(none, Err(heapscope::Error::OutOfBounds { what: "max_bundles", .. })));
    /// # Ok::<(), heapscope::Error>(())
    /// ```
    pub fn max_bundles(mut self, n: u32) -> Self {
        self.max_bundles = n;
        self
    }

    /// Receives what each signal did, on the trigger's thread. By default the outcome is
    /// printed to standard error (the privacy notice and the bundle's path, or why not), where
    /// whoever sent the signal looks for the answer. If `f` panics, the panic is reported once
    /// on standard error and the trigger keeps listening.
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::signal::{SignalOutcome, SignalTrigger};
    /// let trigger = SignalTrigger::builder(Default::default())
    ///     .on_capture(|outcome| match outcome {
    ///         SignalOutcome::Written(bundle) => {
    ///             eprintln!("memory bundle: {}", bundle.directory.display())
    ///         }
    ///         SignalOutcome::Failed(e) => eprintln!("memory bundle failed: {e}"),
    ///         other => eprintln!("signal ignored: {other:?}"),
    ///     })
    ///     .start()?;
    /// trigger.stop();
    /// # Ok::<(), heapscope::Error>(())
    /// ```
    pub fn on_capture(mut self, f: impl FnMut(SignalOutcome) + Send + 'static) -> Self {
        self.on_capture = Box::new(f);
        self
    }

    /// Starts listening.
    ///
    /// # Errors
    /// [`Error::Signal`] when the signal cannot be handled (SIGKILL, SIGSTOP, SIGSEGV and the
    /// like are refused, as are numbers that are not signals), the thread cannot start, or the
    /// platform has no signals (anything but Unix); [`Error::OutOfBounds`] for `max_bundles`
    /// of 0.
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::signal::SignalTrigger;
    /// let refused = SignalTrigger::builder(Default::default()).signal(9).start();
    /// assert!(refused.is_err()); // SIGKILL cannot be handled
    /// ```
    pub fn start(self) -> Result<SignalTrigger> {
        if self.max_bundles == 0 {
            return Err(Error::OutOfBounds {
                what: "max_bundles",
                value: "0".into(),
                allowed: "1 or more",
            });
        }
        self.listen()
    }

    #[cfg(not(unix))]
    fn listen(self) -> Result<SignalTrigger> {
        Err(Error::Signal {
            signal: self.signal,
            message: "this platform has no signals to listen for (the trigger works on Unix)"
                .to_owned(),
        })
    }

    #[cfg(unix)]
    fn listen(self) -> Result<SignalTrigger> {
        let SignalTriggerBuilder { signal, options, cooldown, max_bundles, mut on_capture } = self;
        let refused = |message: String| Error::Signal { signal, message };
        // signal-hook panics on these rather than returning an error.
        #[cfg(target_os = "linux")]
        let highest = libc::SIGRTMAX();
        #[cfg(not(target_os = "linux"))]
        let highest = 31;
        if !(1..=highest).contains(&signal) {
            return Err(refused(format!("not a signal number (1 to {highest})")));
        }
        if signal_hook::consts::FORBIDDEN.contains(&signal) {
            return Err(refused(
                "it cannot be handled (SIGKILL, SIGSTOP, SIGILL, SIGFPE and SIGSEGV cannot)"
                    .to_owned(),
            ));
        }
        let mut signals = Signals::new([signal]).map_err(|e| refused(e.to_string()))?;
        let handle = signals.handle();
        let thread = std::thread::Builder::new()
            .name("heapscope-signal".to_owned())
            .spawn(move || {
                crate::threads::block_async_signals(Some(signal));
                let mut written = 0u32;
                let mut last: Option<Instant> = None;
                let mut panicked = false;
                for _ in signals.forever() {
                    let outcome = match last.map(|t| t.elapsed()) {
                        _ if written >= max_bundles => SignalOutcome::CapReached { max_bundles },
                        Some(since_last) if since_last < cooldown => {
                            SignalOutcome::CoolingDown { since_last }
                        }
                        _ => {
                            // Only bundles written count against the cap: a failed capture
                            // (an unwritable directory, a full disk) wrote nothing, and once
                            // used up the cap so that later signals were refused for good.
                            // The cooldown still spaces out the attempts.
                            let outcome = match capture(&options) {
                                Ok(bundle) => {
                                    written += 1;
                                    SignalOutcome::Written(bundle)
                                }
                                Err(e) => SignalOutcome::Failed(e),
                            };
                            last = Some(Instant::now());
                            outcome
                        }
                    };
                    #[cfg(feature = "tracing")]
                    match &outcome {
                        SignalOutcome::Written(bundle) => tracing::warn!(
                            target: "heapscope",
                            signal,
                            directory = %bundle.directory.display(),
                            "diagnostics bundle written on signal"
                        ),
                        other => tracing::warn!(
                            target: "heapscope",
                            signal,
                            outcome = ?other,
                            "no diagnostics bundle on signal"
                        ),
                    }
                    // A callback that panics must not end the thread: it did, and every later
                    // signal was taken by the handler and answered by nobody.
                    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        on_capture(outcome)
                    }));
                    if ran.is_err() && !panicked {
                        panicked = true;
                        // Not `eprintln!`, which panics when stderr is gone (a closed pipe).
                        let _ = std::io::Write::write_all(
                            &mut std::io::stderr(),
                            b"heapscope: the signal trigger's on_capture panicked; the trigger \
                              keeps listening\n",
                        );
                    }
                }
            })
            .map_err(|e| {
                handle.close();
                refused(format!("cannot start the trigger thread: {e}"))
            })?;
        Ok(SignalTrigger { signal, handle, thread: Some(thread), pid: std::process::id() })
    }
}

/// Prints what a signal did to standard error. Not with `eprintln!`, which panics when
/// stderr is gone (a closed pipe) and would end the trigger thread.
fn print_outcome(outcome: SignalOutcome) {
    use std::io::Write as _;
    let message = match outcome {
        SignalOutcome::Written(bundle) => format!(
            "heapscope: diagnostics bundle written to {}\n{}",
            bundle.directory.display(),
            bundle.privacy_notice
        ),
        SignalOutcome::Failed(e) => format!("heapscope: the diagnostics bundle failed: {e}"),
        SignalOutcome::CoolingDown { since_last } => format!(
            "heapscope: signal ignored: the last bundle was finished {:.1} s ago",
            since_last.as_secs_f64()
        ),
        SignalOutcome::CapReached { max_bundles } => format!(
            "heapscope: signal ignored: this process already wrote {max_bundles} bundles on \
             signals"
        ),
    };
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// While alive, a signal writes a diagnostics bundle. Dropping it (or [`stop`](Self::stop))
/// stops listening and joins its thread. Its thread does not follow a `fork`: in a child nothing
/// answers the signal, and dropping the trigger there leaves the parent's thread alone and
/// returns at once.
///
/// ```no_run
/// let trigger = heapscope::signal::SignalTrigger::start(
///     heapscope::CaptureOptions::new("/var/tmp/agent"),
/// )?;
/// // `kill -USR2 <pid>` now writes /var/tmp/agent/diagnostics/memory/<time>-<pid>/.
/// # drop(trigger);
/// # Ok::<(), heapscope::Error>(())
/// ```
#[derive(Debug)]
pub struct SignalTrigger {
    signal: i32,
    #[cfg(unix)]
    handle: Handle,
    thread: Option<JoinHandle<()>>,
    /// The process the thread runs in.
    pid: u32,
}

impl SignalTrigger {
    /// Listens for SIGUSR2 with the defaults (10 s cooldown, at most 10 bundles, outcomes on
    /// standard error); each signal writes a bundle with `options`.
    ///
    /// # Errors
    /// As [`SignalTriggerBuilder::start`].
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::signal::{SignalTrigger, DEFAULT_SIGNAL};
    /// let dir = std::env::temp_dir().join(format!("heapscope-doc-{}", std::process::id()));
    /// // Kept alive for as long as the process should answer `kill -USR2 <pid>`.
    /// let trigger = SignalTrigger::start(heapscope::CaptureOptions::new(&dir))?;
    /// assert_eq!(trigger.signal(), DEFAULT_SIGNAL);
    /// # drop(trigger);
    /// # std::fs::remove_dir_all(&dir).ok();
    /// # Ok::<(), heapscope::Error>(())
    /// ```
    pub fn start(options: CaptureOptions) -> Result<SignalTrigger> {
        Self::builder(options).start()
    }

    /// A trigger to configure: signal, cooldown, cap and what to do with each outcome.
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::signal::{SignalOutcome, SignalTrigger};
    /// use std::time::Duration;
    /// let trigger = SignalTrigger::builder(heapscope::CaptureOptions::new("/var/tmp/agent"))
    ///     .cooldown(Duration::from_secs(60))
    ///     .max_bundles(3)
    ///     .on_capture(|outcome| {
    ///         if let SignalOutcome::Written(bundle) = outcome {
    ///             eprintln!("bundle: {}", bundle.directory.display());
    ///         }
    ///     })
    ///     .start()?;
    /// trigger.stop();
    /// # Ok::<(), heapscope::Error>(())
    /// ```
    pub fn builder(options: CaptureOptions) -> SignalTriggerBuilder {
        SignalTriggerBuilder {
            signal: DEFAULT_SIGNAL,
            options,
            cooldown: Duration::from_secs(10),
            max_bundles: 10,
            on_capture: Box::new(print_outcome),
        }
    }

    /// The signal this trigger listens for.
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::signal::{SignalTrigger, DEFAULT_SIGNAL};
    /// let trigger = SignalTrigger::builder(Default::default()).on_capture(|_| {}).start()?;
    /// assert_eq!(trigger.signal(), DEFAULT_SIGNAL);
    /// trigger.stop();
    /// # Ok::<(), heapscope::Error>(())
    /// ```
    pub fn signal(&self) -> i32 {
        self.signal
    }

    /// Stops listening and waits for a capture in progress to finish.
    ///
    /// The process-wide handler stays installed (signal-hook never removes one), so the signal
    /// is from then on ignored, not given its default action (ending the process).
    ///
    /// ```
    /// # heapscope::install!();
    /// use heapscope::signal::SignalTrigger;
    /// let (sent, received) = std::sync::mpsc::channel();
    /// let trigger = SignalTrigger::builder(Default::default())
    ///     .on_capture(move |outcome| {
    ///         let _ = sent.send(outcome);
    ///     })
    ///     .start()?;
    /// trigger.stop();
    /// // The trigger's thread has ended and dropped the callback: no outcome can come any more.
    /// assert!(received.recv().is_err());
    /// # Ok::<(), heapscope::Error>(())
    /// ```
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if std::process::id() != self.pid {
            // A forked child: the thread, and the reading end its handle wakes, are the
            // parent's. Joining it panicked in the child.
            std::mem::forget(self.thread.take());
            return;
        }
        #[cfg(unix)]
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SignalTrigger {
    fn drop(&mut self) {
        self.shut_down();
    }
}
