//! What the outside sees: alerts as log lines, the latency histograms, the status
//! snapshot (`hikwatch status`, metrics) and the `STATUS=` line for systemd.

use std::time::{Duration, Instant};

use crate::backend::ErrorClass;
use crate::config::{BackendKind, format_duration};
use crate::status::{CameraStatusReport, FleetStatusReport, LastErrorReport, QueueStatus};
use crate::supervisor::{Alert, CamId, ExceptionKind, JOB_QUEUE_CAPACITY, LossCause, State};
use crate::{cam_error, cam_info};

use super::shell::{CameraSlot, SupervisorDriver};

/// A vendor code in words, for logs and status.
pub(crate) fn describe(class: ErrorClass, code: u32) -> String {
    match code {
        0 => match class {
            ErrorClass::Timeout => "no answer before the deadline".into(),
            other => other.name().into(),
        },
        #[cfg(feature = "sdk")]
        0x8000..=0x80ff => describe_exception(code),
        _ => format!("{} error {code}", class.name()),
    }
}

/// A lost session in words: the core's loss path, with the failure's class and code where
/// they add something. The SDK's exception names only for the SDK backend (other backends
/// have no such codes; their event stream is a cause of its own).
pub(crate) fn describe_loss(
    cause: LossCause,
    class: ErrorClass,
    code: u32,
    backend: BackendKind,
) -> String {
    // The confirming heartbeat's error, where it had one.
    let detail = |what: &str| match code {
        0 => what.to_owned(),
        _ => format!(
            "{what} (the confirming heartbeat: {})",
            describe(class, code)
        ),
    };
    match cause {
        LossCause::HeartbeatsMissed => match (class, code) {
            (ErrorClass::Timeout, 0) => "heartbeats went unanswered".into(),
            _ => format!("heartbeats failed: {}", describe(class, code)),
        },
        LossCause::BackendException | LossCause::ReloginUnfinished => {
            let exception = match backend {
                BackendKind::Sdk => describe_exception(code),
                // The ISAPI backend's one event: its stream reader saw the stream break.
                BackendKind::Isapi => match ExceptionKind::from_code(code) {
                    ExceptionKind::Preview | ExceptionKind::PreviewClosed => {
                        "the device's watched stream broke".into()
                    }
                    _ => format!("backend event {code:#x}"),
                },
            };
            if cause == LossCause::ReloginUnfinished {
                format!("{exception}: the re-login did not finish in time")
            } else {
                exception
            }
        }
        LossCause::EventStreamLost => detail("the device's event stream ended or fell silent"),
        LossCause::LinkLost => {
            detail("the link watch's connection to the device was reset or closed")
        }
        LossCause::LinkSilent => "the link watch's connection to the device went silent".into(),
        LossCause::StreamStartFailed => match (class, code) {
            (ErrorClass::Timeout, 0) => {
                "the watched stream did not start before the deadline".into()
            }
            _ => format!(
                "the watched stream failed to start: {}",
                describe(class, code)
            ),
        },
        LossCause::StreamGap => "the watched stream stopped sending data".into(),
    }
}

/// An SDK exception type in words.
fn describe_exception(code: u32) -> String {
    #[cfg(feature = "sdk")]
    return format!("SDK exception {}", crate::sdk::ExceptionCode(code).name());
    #[cfg(not(feature = "sdk"))]
    format!("SDK exception {code:#x}")
}

fn whole(d: Duration) -> String {
    format_duration(Duration::from_secs(d.as_secs().max(1)))
}

impl SupervisorDriver {
    /// An alert from the core: a log line (camera id first, repeats rate-limited) and the
    /// latency measurements.
    pub(crate) fn on_alert(&mut self, cam: CamId, alert: Alert) {
        let now = Instant::now();
        let id = self.id(cam).to_string();
        let Some(slot) = self.slots.get_mut(cam.0 as usize) else {
            return;
        };
        match alert {
            Alert::Down { cause, class, code } => {
                // Detection latency: from the last evidence of health to this verdict.
                if let Some(t) = slot.last_good.take() {
                    self.obs.detection.observe(now.saturating_duration_since(t));
                }
                slot.down_at = Some(now);
                self.repeat.log(
                    log::Level::Warn,
                    &id,
                    "down",
                    format_args!(
                        "session lost: {}",
                        describe_loss(cause, class, code, slot.conf.backend)
                    ),
                );
            }
            Alert::Recovered { downtime_ms } => {
                slot.last_good = Some(now);
                if slot.down_at.take().is_some() {
                    // Recovery latency: from the loss verdict to online again.
                    let d = Duration::from_millis(downtime_ms);
                    self.obs.recovery.observe(d);
                    self.repeat.log(
                        log::Level::Info,
                        &id,
                        "online",
                        format_args!("online again ({} after the loss)", whole(d)),
                    );
                } else {
                    cam_info!(id, "online");
                }
            }
            Alert::AuthHold { retries_left } => {
                let tries = retries_left
                    .map_or_else(String::new, |n| format!(" (the device allows {n} more)"));
                cam_error!(
                    id,
                    "credentials rejected{tries}: no more logins until the password or user \
                     changes in the config (then reload: systemctl reload hikwatch)"
                );
            }
            Alert::Locked { wait_ms } => {
                cam_error!(
                    id,
                    "the device locked this client out (wrong passwords); no login for {}",
                    whole(Duration::from_millis(wait_ms))
                );
            }
            Alert::Stuck { call } => {
                self.obs.deadlines_missed += 1;
                self.repeat.log(
                    log::Level::Warn,
                    &id,
                    "deadline",
                    format_args!("{call:?} call missed its deadline"),
                );
            }
            Alert::StreamRefused { code, retry_ms } => {
                self.repeat.log(
                    log::Level::Warn,
                    &id,
                    "stream",
                    format_args!(
                        "stream refused: {}; the session stays, the stream is asked for \
                         again in {}",
                        describe(ErrorClass::Resource, code),
                        whole(Duration::from_millis(retry_ms))
                    ),
                );
            }
            Alert::NeedsOperator { class, code } => {
                self.repeat.log(
                    log::Level::Error,
                    &id,
                    "operator",
                    format_args!(
                        "login failed with {}: {}; retrying slowly",
                        describe(class, code),
                        class.advice()
                    ),
                );
            }
        }
    }

    /// The configured cameras, in config order, with their supervisor ids.
    fn configured(&self) -> impl Iterator<Item = (CamId, &CameraSlot)> + '_ {
        self.cfg.cameras.iter().filter_map(|c| {
            let cam = *self.by_id.get(&c.id)?;
            Some((cam, self.slots.get(cam.0 as usize)?))
        })
    }

    /// The status snapshot for `hikwatch status` and the metrics.
    pub(crate) fn snapshot(&self) -> FleetStatusReport {
        let mut st = FleetStatusReport::new(self.clock.start_wall);
        for (cam, slot) in self.configured() {
            let Some(cs) = self.sup.status(cam) else {
                continue;
            };
            let next = if cs.state == State::Locked {
                cs.lock_until
            } else {
                cs.next_attempt
            };
            st.cameras.push(CameraStatusReport {
                id: slot.conf.id.clone(),
                state: cs.state.name().into(),
                backend: slot.conf.backend.as_str().into(),
                since: self.clock.wall(cs.since),
                last_error: cs.last_error.map(|e| LastErrorReport {
                    code: (e.code != 0).then_some(e.code),
                    message: match (e.cause, &slot.last_text) {
                        (Some(cause), _) => {
                            describe_loss(cause, e.class, e.code, slot.conf.backend)
                        }
                        (None, Some((code, text))) if *code == e.code && e.code != 0 => {
                            text.clone()
                        }
                        (None, _) => describe(e.class, e.code),
                    },
                    cause: e.cause.map(LossCause::name),
                    at: self.clock.wall(e.at),
                }),
                login_attempts: cs.counters.login_attempts,
                reconnects: cs.counters.drops,
                next_attempt: next.map(|t| self.clock.wall(t)),
            });
        }
        let fs = self.sup.fleet_status();
        st.queue = QueueStatus {
            depth: u64::from(fs.queue_depth),
            capacity: JOB_QUEUE_CAPACITY as u64,
            overflows: fs.queue_overflows,
        };
        st.state_writes = self.store.metrics().writes;
        st.sdk_deadlines_missed = self.obs.deadlines_missed;
        // A counter read inside the SDK (no I/O): fine on the executor thread.
        st.sdk_handles = self.backends.sdk_handles();
        st.detection_latency = self.obs.detection.clone();
        st.recovery_latency = self.obs.recovery.clone();
        st
    }

    /// `"62/64 online, 1 auth-hold, 1 backoff"`: the `STATUS=` text.
    pub(crate) fn status_line(&self) -> String {
        let mut counts = [0u32; State::COUNT];
        let mut total = 0;
        for (cam, _) in self.configured() {
            if let Some(cs) = self.sup.status(cam) {
                counts[cs.state.index()] += 1;
                total += 1;
            }
        }
        let mut line = format!("{}/{total} online", counts[State::Online.index()]);
        for s in State::ALL {
            let n = counts[s.index()];
            if s != State::Online && n > 0 {
                line.push_str(&format!(", {n} {}", s.name()));
            }
        }
        if self.stopping {
            line.push_str("; stopping");
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_loss_cause_has_its_own_words_and_isapi_ones_name_no_sdk_exception() {
        let causes = [
            LossCause::HeartbeatsMissed,
            LossCause::BackendException,
            LossCause::ReloginUnfinished,
            LossCause::EventStreamLost,
            LossCause::LinkLost,
            LossCause::LinkSilent,
            LossCause::StreamStartFailed,
            LossCause::StreamGap,
        ];
        let mut seen = std::collections::HashSet::new();
        for cause in causes {
            let text = describe_loss(cause, ErrorClass::Timeout, 0, BackendKind::Isapi);
            assert!(seen.insert(text.clone()), "{cause:?}: {text}");
            if cause != LossCause::BackendException && cause != LossCause::ReloginUnfinished {
                assert!(!text.contains("SDK"), "{cause:?}: {text}");
            }
        }
        let stream = describe_loss(
            LossCause::EventStreamLost,
            ErrorClass::Network,
            0,
            BackendKind::Isapi,
        );
        assert_eq!(stream, "the device's event stream ended or fell silent");
        assert_eq!(
            describe_loss(
                LossCause::StreamGap,
                ErrorClass::Timeout,
                0,
                BackendKind::Isapi
            ),
            "the watched stream stopped sending data"
        );
        assert!(
            describe_loss(
                LossCause::BackendException,
                ErrorClass::Network,
                0x8000,
                BackendKind::Sdk
            )
            .starts_with("SDK exception")
        );
    }
}
