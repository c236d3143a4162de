//! The main thread's event loop (event-manager): it waits for the vCPU thread to end (an
//! EventFd the thread writes as it exits) or for `--timeout` (a TimerFd), and meanwhile feeds
//! stdin to the serial console (`devices/console_input.rs`).

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use event_manager::{EventManager, EventOps, EventSet, Events, MutEventSubscriber, SubscriberOps};
use log::error;
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::timerfd::TimerFd;

use crate::error::{Error, Result};

/// Why the event loop returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopEnd {
    VcpuExited,
    TimedOut,
    /// The user typed the escape key's quit command (Ctrl-A x).
    Quit,
}

type Outcome = Rc<Cell<Option<LoopEnd>>>;

/// Ends the loop when its EventFd is written: the vCPU thread has finished, or the user quit.
struct EndWatcher {
    evt: EventFd,
    end: LoopEnd,
    outcome: Outcome,
}

impl MutEventSubscriber for EndWatcher {
    fn process(&mut self, _events: Events, _ops: &mut EventOps) {
        let _ = self.evt.read();
        // The vCPU's end wins over a quit in the same epoll round.
        if self.outcome.get() != Some(LoopEnd::VcpuExited) {
            self.outcome.set(Some(self.end));
        }
    }
    fn init(&mut self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::new(&self.evt, EventSet::IN)) {
            error!("cannot watch the vCPU thread: {e:?}");
        }
    }
}

/// Ends the loop when the guest has run for longer than `--timeout`.
struct TimeoutWatcher {
    timer: TimerFd,
    outcome: Outcome,
}

impl MutEventSubscriber for TimeoutWatcher {
    fn process(&mut self, _events: Events, _ops: &mut EventOps) {
        let _ = self.timer.wait();
        // The vCPU may have ended in the same epoll round: its result wins.
        if self.outcome.get().is_none() {
            self.outcome.set(Some(LoopEnd::TimedOut));
        }
    }
    fn init(&mut self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::new(&self.timer, EventSet::IN)) {
            error!("cannot watch the timeout timer: {e:?}");
        }
    }
}

/// Runs the event loop until the vCPU thread signals `vcpu_end`, `quit` is written or `timeout`
/// passes. `extra` are further event sources (console input) served meanwhile.
pub fn wait_for_guest(
    vcpu_end: EventFd,
    quit: EventFd,
    timeout: Option<Duration>,
    extra: Vec<Box<dyn MutEventSubscriber>>,
) -> Result<LoopEnd> {
    let internal = |what: &str, e: &dyn std::fmt::Debug| Error::Internal(format!("{what}: {e:?}"));
    let mut manager: EventManager<Box<dyn MutEventSubscriber>> =
        EventManager::new().map_err(|e| internal("event manager", &e))?;
    let outcome: Outcome = Rc::new(Cell::new(None));
    manager.add_subscriber(Box::new(EndWatcher {
        evt: vcpu_end,
        end: LoopEnd::VcpuExited,
        outcome: outcome.clone(),
    }));
    manager.add_subscriber(Box::new(EndWatcher {
        evt: quit,
        end: LoopEnd::Quit,
        outcome: outcome.clone(),
    }));
    if let Some(limit) = timeout {
        let mut timer = TimerFd::new().map_err(|e| internal("timerfd", &e))?;
        timer
            .reset(limit, None)
            .map_err(|e| internal("timerfd", &e))?;
        manager.add_subscriber(Box::new(TimeoutWatcher {
            timer,
            outcome: outcome.clone(),
        }));
    }
    for subscriber in extra {
        manager.add_subscriber(subscriber);
    }
    loop {
        manager.run().map_err(|e| internal("event loop", &e))?;
        if let Some(end) = outcome.get() {
            return Ok(end);
        }
    }
}
