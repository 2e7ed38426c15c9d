//! A signal that asks for a diagnostics bundle (feature `signal`).
//!
//! The signal handler itself only records that the signal arrived (signal-hook's self-pipe);
//! a dedicated thread waits for it and runs [`capture`], which allocates,
//! writes files and may take a heap profile — none of which is allowed inside a handler.
//! Signals that arrive while a capture runs are merged into one more capture.

use crate::bundle::{capture, Bundle, CaptureOptions};
use crate::error::{Error, Result};
use signal_hook::iterator::{Handle, Signals};
use std::thread::JoinHandle;

/// The signal [`SignalTrigger::start`] listens for.
pub const DEFAULT_SIGNAL: i32 = signal_hook::consts::SIGUSR2;

/// While alive, a signal writes a diagnostics bundle. Dropping it (or [`stop`](Self::stop))
/// stops listening and joins its thread.
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
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl SignalTrigger {
    /// Listens for SIGUSR2; each one writes a bundle with `options` and prints the privacy
    /// notice and the bundle's path (or the error) to standard error, where whoever sent the
    /// signal looks for the answer.
    ///
    /// # Errors
    /// As [`start_on`](Self::start_on).
    pub fn start(options: CaptureOptions) -> Result<SignalTrigger> {
        Self::start_on(DEFAULT_SIGNAL, options, |outcome| match outcome {
            Ok(bundle) => eprintln!(
                "heapscope: diagnostics bundle written to {}\n{}",
                bundle.directory.display(),
                bundle.privacy_notice
            ),
            Err(e) => eprintln!("heapscope: the diagnostics bundle failed: {e}"),
        })
    }

    /// Listens for `signal`; each one writes a bundle with `options` and hands the outcome to
    /// `on_capture`, on the trigger's thread.
    ///
    /// # Errors
    /// [`Error::Signal`] when the signal cannot be handled (SIGKILL, SIGSTOP, SIGSEGV and the
    /// like are refused) or the thread cannot start.
    ///
    /// ```
    /// use heapscope::signal::SignalTrigger;
    /// let refused = SignalTrigger::start_on(9, heapscope::CaptureOptions::default(), |_| {});
    /// assert!(refused.is_err()); // SIGKILL cannot be handled
    /// ```
    pub fn start_on(
        signal: i32,
        options: CaptureOptions,
        mut on_capture: impl FnMut(Result<Bundle>) + Send + 'static,
    ) -> Result<SignalTrigger> {
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
                for _ in signals.forever() {
                    let outcome = capture(&options);
                    #[cfg(feature = "tracing")]
                    match &outcome {
                        Ok(bundle) => tracing::warn!(
                            target: "heapscope",
                            signal,
                            directory = %bundle.directory.display(),
                            "diagnostics bundle written on signal"
                        ),
                        Err(e) => tracing::error!(
                            target: "heapscope",
                            signal,
                            error = %e,
                            "diagnostics bundle on signal failed"
                        ),
                    }
                    on_capture(outcome);
                }
            })
            .map_err(|e| {
                handle.close();
                refused(format!("cannot start the trigger thread: {e}"))
            })?;
        Ok(SignalTrigger { signal, handle, thread: Some(thread) })
    }

    /// The signal this trigger listens for.
    ///
    /// ```
    /// use heapscope::signal::{SignalTrigger, DEFAULT_SIGNAL};
    /// let trigger = SignalTrigger::start_on(DEFAULT_SIGNAL, Default::default(), |_| {})?;
    /// assert_eq!(trigger.signal(), DEFAULT_SIGNAL);
    /// trigger.stop();
    /// # Ok::<(), heapscope::Error>(())
    /// ```
    pub fn signal(&self) -> i32 {
        self.signal
    }

    /// Stops listening and waits for a capture in progress to finish.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
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
