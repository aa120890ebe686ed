//! SIGTERM/SIGINT and SIGHUP as async values, through `signalfd(2)`: no signal handler,
//! no `unsafe`.
//!
//! The signals are blocked with `pthread_sigmask` in the thread that calls
//! [`Signals::block`]; threads started afterwards (the SDK's, smol's, the call pool's)
//! inherit the mask, so the kernel queues the signals for the signalfds instead of
//! running a default action on some random thread. That is why `block` must run before
//! any thread exists: a thread started earlier keeps its own, unblocked mask and could
//! take a SIGTERM with the default action (exit without logout or state flush).
//!
//! Two signalfds split the signals by meaning: one for "stop" (SIGTERM, SIGINT), one for
//! "reload" (SIGHUP), so the stop side is a plain future and the reload side a stream.

use std::future::Future;
use std::io;

use async_io::{Async, Timer};
use futures_lite::Stream;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The daemon's signal sources. See the module docs.
#[derive(Debug)]
pub struct Signals {
    stop: Async<SignalFd>,
    reload: Async<SignalFd>,
}

fn set(signals: &[Signal]) -> SigSet {
    let mut s = SigSet::empty();
    for sig in signals {
        s.add(*sig);
    }
    s
}

const STOP: [Signal; 2] = [Signal::SIGTERM, Signal::SIGINT];
const RELOAD: [Signal; 1] = [Signal::SIGHUP];

impl Signals {
    /// Blocks SIGTERM, SIGINT and SIGHUP for this thread and every thread it starts
    /// later, and opens the signalfds that receive them.
    ///
    /// Call it first thing in `main`, before anything starts a thread.
    ///
    /// # Errors
    /// The OS error of `pthread_sigmask`, `signalfd` or the reactor registration.
    pub fn block() -> io::Result<Signals> {
        let all = set(&[Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP]);
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&all), None).map_err(io::Error::from)?;
        let flags = SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC;
        let stop = SignalFd::with_flags(&set(&STOP), flags).map_err(io::Error::from)?;
        let reload = SignalFd::with_flags(&set(&RELOAD), flags).map_err(io::Error::from)?;
        Ok(Signals {
            stop: Async::new(stop)?,
            reload: Async::new(reload)?,
        })
    }

    /// The stop future (resolves at the first SIGTERM or SIGINT) and the reload stream (one
    /// item per SIGHUP; signals that arrive together are merged by the kernel).
    pub fn into_parts(self) -> (impl Future<Output = ()>, impl Stream<Item = ()>) {
        let stop = self.stop;
        let shutdown = async move {
            let sig = next_signal(&stop).await;
            log::info!("received {sig}; stopping");
        };
        let reload = futures_lite::stream::unfold(self.reload, |fd| async move {
            let sig = next_signal(&fd).await;
            log::info!("received {sig}; reloading the configuration");
            Some(((), fd))
        });
        (shutdown, reload)
    }
}

/// Waits for the next signal on `fd` and returns its name.
async fn next_signal(fd: &Async<SignalFd>) -> String {
    loop {
        let got = fd
            .read_with(|fd| match fd.read_signal() {
                Ok(Some(info)) => Ok(info.ssi_signo),
                Ok(None) => Err(io::ErrorKind::WouldBlock.into()),
                Err(e) => Err(io::Error::from(e)),
            })
            .await;
        match got {
            Ok(no) => {
                return i32::try_from(no)
                    .ok()
                    .and_then(|n| Signal::try_from(n).ok())
                    .map_or_else(|| format!("signal {no}"), |s| s.as_str().to_string());
            }
            Err(e) => {
                // Not expected for a signalfd; never spin on it.
                log::error!("reading the signalfd: {e}");
                Timer::after(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}
