//! A thread that reads owners in a loop while a test allocates, as a monitor or a metrics
//! exporter would: readings lift peaks, so tests check that they never lift them above what
//! was live.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

/// The reading thread; stopped by [`Reader::stop`], or on drop when a check fails first (so
/// the test ends with its own message).
pub(crate) struct Reader {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<u64>>,
}

impl Reader {
    /// Calls `read` with the number of readings so far until stopped.
    pub(crate) fn spawn(mut read: impl FnMut(u64) + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                let mut readings = 0u64;
                while !stop.load(SeqCst) {
                    read(readings);
                    readings += 1;
                }
                readings
            }
        });
        Reader { stop, thread: Some(thread) }
    }

    /// Stops the thread and returns how many readings it took.
    pub(crate) fn stop(mut self) -> u64 {
        self.stop.store(true, SeqCst);
        let thread = self.thread.take().expect("joined once");
        thread.join().expect("the reader panicked")
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
    }
}
