//! Commands from other threads of the daemon (the provisioning API): the same
//! [`ControlCommand`]s as the control socket's, queued to the control thread, answered by
//! [`crate::Gateway::command`] between its other duties, so there is one dispatcher.
//!
//! The queue is bounded and a full one is refused at once: an API request never waits for a
//! slot, and a flood of them cannot grow memory.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::Duration;

use crate::command::{ControlAnswer, ControlCommand};

/// Commands queued at most, over every sender.
const DEPTH: usize = 256;

type Request = (ControlCommand, SyncSender<ControlAnswer>);

/// Why a command got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AskError {
    /// The queue is full: the control thread is behind.
    #[error("the gateway's command queue is full")]
    Busy,
    /// The gateway has stopped.
    #[error("the gateway has stopped")]
    Gone,
    /// No answer within the caller's time.
    #[error("the gateway did not answer in time")]
    Timeout,
}

/// A handle that asks the running gateway; cheap to clone, for any thread.
#[derive(Clone, Debug)]
pub struct CommandSender(SyncSender<Request>);

impl CommandSender {
    /// Queues `cmd` and waits up to `wait` for its answer (a refusal is an answer too).
    /// Blocks the calling thread: from async code, call it on a blocking thread.
    pub fn ask(&self, cmd: ControlCommand, wait: Duration) -> Result<ControlAnswer, AskError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.0.try_send((cmd, tx)).map_err(|e| match e {
            TrySendError::Full(_) => AskError::Busy,
            TrySendError::Disconnected(_) => AskError::Gone,
        })?;
        rx.recv_timeout(wait).map_err(|e| match e {
            RecvTimeoutError::Timeout => AskError::Timeout,
            RecvTimeoutError::Disconnected => AskError::Gone,
        })
    }
}

/// The control thread's end.
pub struct Inbox {
    rx: Receiver<Request>,
    tx: SyncSender<Request>,
}

impl Default for Inbox {
    fn default() -> Self {
        let (tx, rx) = mpsc::sync_channel(DEPTH);
        Inbox { rx, tx }
    }
}

impl Inbox {
    /// A new handle on this inbox.
    pub fn sender(&self) -> CommandSender {
        CommandSender(self.tx.clone())
    }

    /// Answers every queued command with `answer`; an asker that stopped waiting is skipped.
    pub fn serve_pending(&self, answer: &mut dyn FnMut(ControlCommand) -> ControlAnswer) {
        while let Ok((cmd, reply)) = self.rx.try_recv() {
            // The asker may have timed out and gone: its answer has nowhere to go.
            let _ = reply.try_send(answer(cmd));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Versions;

    #[test]
    fn a_queued_command_is_answered_by_the_server_and_a_full_queue_refused() {
        let inbox = Inbox::default();
        let s = inbox.sender();
        let asker =
            std::thread::spawn(move || s.ask(ControlCommand::Version, Duration::from_secs(5)));
        let mut seen = Vec::new();
        while !asker.is_finished() {
            inbox.serve_pending(&mut |c| {
                seen.push(c);
                ControlAnswer::Version(Versions {
                    ispmux: "t".into(),
                    dpdk: None,
                })
            });
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(matches!(
            asker.join().expect("join"),
            Ok(ControlAnswer::Version(_))
        ));
        assert_eq!(seen, [ControlCommand::Version]);
        let s = inbox.sender();
        let results: Vec<_> = (0..DEPTH + 1)
            .map(|_| s.ask(ControlCommand::Stats, Duration::ZERO))
            .collect();
        assert!(results[..DEPTH]
            .iter()
            .all(|r| *r == Err(AskError::Timeout)));
        assert_eq!(results[DEPTH], Err(AskError::Busy));
        drop(inbox);
        assert_eq!(
            s.ask(ControlCommand::Stats, Duration::ZERO),
            Err(AskError::Gone)
        );
    }
}
