//! What the kernel was doing, as slices on one lane, from its event records: `--trace`'s kernel
//! track (trace_json.rs) and `--timeline`'s kernel lane (timeline.rs) both follow this one
//! state machine, so that the trace and the picture of a run agree about when a slice of
//! kernel work opened and closed; each only says what a slice becomes (an event pair, a
//! rectangle). The slices always nest: a switch or idle closes everything open (a blocking
//! call ends its slice there, and its ENTER opens a new one when the task runs again), a call
//! still open when the next begins ends there, and an end that is not the innermost slice's
//! is dropped.

use abi::trace::{self, Record};

/// A kind of kernel work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slice {
    /// A system call, by number.
    Syscall(u64),
    /// A timer interrupt.
    Tick,
    PageFault,
    /// A device interrupt (or a spurious one), by vector.
    Interrupt(u64),
    Idle,
    /// The kernel's answer to an exception: until the signal is taken, the task is gone or the
    /// kernel does anything else.
    Exception,
}

/// Why a slice closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close<'a> {
    /// This record ended it: its own end (whose arguments may say how it went), or the kernel
    /// went on to work that rules the slice out.
    By(&'a Record),
    /// A switch, idle or the end of the records closed everything open, innermost first.
    Cut,
}

/// What the slices become. `Open` is what the output keeps while a slice is open (its start,
/// its name), handed back when it closes, so no output keeps a stack of its own.
pub trait Output {
    type Open;
    /// `slice` opens at `ns` with `r`.
    fn open(&mut self, slice: Slice, r: &Record, ns: u64) -> Self::Open;
    /// `slice`, opened with `open`, closes at `ns`.
    fn close(&mut self, slice: Slice, open: Self::Open, why: Close<'_>, ns: u64);
}

/// The slices open now, innermost last, each with its output's `Open`.
pub struct KernelLane<T> {
    open: Vec<(Slice, T)>,
}

impl<T> Default for KernelLane<T> {
    fn default() -> Self {
        KernelLane { open: Vec::new() }
    }
}

impl<T> KernelLane<T> {
    /// The next record, in the order the kernel sent them, at `ns` (the caller's time for it:
    /// the trace keeps a track's time from going back).
    pub fn step(&mut self, r: &Record, ns: u64, out: &mut impl Output<Open = T>) {
        match r.kind {
            trace::SYSCALL_ENTER => {
                self.end_call(r, ns, out);
                self.begin(Slice::Syscall(r.a[0]), r, ns, out)
            }
            trace::SYSCALL_EXIT => self.end(Slice::Syscall(r.a[0]), r, ns, out),
            trace::TICK_BEGIN => self.begin(Slice::Tick, r, ns, out),
            trace::TICK_END => self.end(Slice::Tick, r, ns, out),
            trace::PAGE_FAULT_BEGIN => self.begin(Slice::PageFault, r, ns, out),
            trace::PAGE_FAULT_END => self.end(Slice::PageFault, r, ns, out),
            trace::INTERRUPT_BEGIN => self.begin(Slice::Interrupt(r.a[0]), r, ns, out),
            trace::INTERRUPT_END => {
                if let Some(&(Slice::Interrupt(v), _)) = self.open.last() {
                    self.end(Slice::Interrupt(v), r, ns, out);
                }
            }
            trace::IDLE_BEGIN => {
                // The call that blocked ends here: the CPU has nothing to do.
                self.cut(ns, out);
                self.begin(Slice::Idle, r, ns, out);
            }
            trace::IDLE_END => self.end(Slice::Idle, r, ns, out),
            trace::SIGNAL => self.end(Slice::Exception, r, ns, out),
            // What the kernel did for the task it leaves is over, or resumes as new slices
            // (a blocked call's ENTER again) when that task runs again.
            trace::SWITCH => self.cut(ns, out),
            trace::FAULT => self.begin(Slice::Exception, r, ns, out),
            _ => {}
        }
    }

    /// At a call's ENTER `r`: ends the innermost slice if it is a call. The CPU is in one call
    /// at a time, so a call whose end was not recorded (the kernel once left out the end of
    /// call -1) ends where the next begins rather than hold the slices after it.
    fn end_call(&mut self, r: &Record, ns: u64, out: &mut impl Output<Open = T>) {
        if let Some(&(Slice::Syscall(n), _)) = self.open.last() {
            self.end(Slice::Syscall(n), r, ns, out);
        }
    }

    /// The records ended at `ns`: what is still open closes there.
    pub fn finish(&mut self, ns: u64, out: &mut impl Output<Open = T>) {
        self.cut(ns, out);
    }

    fn begin(&mut self, slice: Slice, r: &Record, ns: u64, out: &mut impl Output<Open = T>) {
        // An exception's handling is over once the kernel does anything else.
        self.end(Slice::Exception, r, ns, out);
        let open = out.open(slice, r, ns);
        self.open.push((slice, open));
    }

    /// Ends the innermost slice if it is `slice`: an end that does not match is dropped, so
    /// that the slices nest (a blocked call's exit after the switch already closed it).
    fn end(&mut self, slice: Slice, r: &Record, ns: u64, out: &mut impl Output<Open = T>) {
        if self.open.last().is_some_and(|(s, _)| *s == slice) {
            let (s, open) = self.open.pop().expect("checked");
            out.close(s, open, Close::By(r), ns);
        }
    }

    fn cut(&mut self, ns: u64, out: &mut impl Output<Open = T>) {
        while let Some((s, open)) = self.open.pop() {
            out.close(s, open, Close::Cut, ns);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use abi::syscall::nr;

    /// The transitions as text, each slice's open time kept for its close.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl Output for Log {
        type Open = u64;

        fn open(&mut self, slice: Slice, _: &Record, ns: u64) -> u64 {
            self.0.push(format!("{ns} open {slice:?}"));
            ns
        }

        fn close(&mut self, slice: Slice, since: u64, why: Close<'_>, ns: u64) {
            let how = match why {
                Close::By(_) => "close",
                Close::Cut => "cut",
            };
            self.0.push(format!("{ns} {how} {slice:?} from {since}"));
        }
    }

    /// The log of the records (ns, kind, first argument: all the machine reads), closed at
    /// `end`.
    fn run(records: &[(u64, u32, u64)], end: u64) -> Vec<String> {
        let (mut lane, mut log) = (KernelLane::default(), Log::default());
        for &(ns, kind, a0) in records {
            let r = Record {
                ns,
                kind,
                pid: 1,
                a: [a0, 0, 0, 0],
            };
            lane.step(&r, ns, &mut log);
        }
        lane.finish(end, &mut log);
        log.0
    }

    const READ: u64 = nr::READ as u64;
    const WRITE: u64 = nr::WRITE as u64;

    #[test]
    fn a_blocking_call_ends_at_the_switch_and_begins_again_when_its_task_runs() {
        let records = [
            (10, trace::SYSCALL_ENTER, READ),
            (20, trace::SWITCH, 2),
            (30, trace::SWITCH, 1),
            // The handler returns after the switch back: this end finds nothing open.
            (40, trace::SYSCALL_EXIT, READ),
            (50, trace::SYSCALL_ENTER, READ),
            (60, trace::SYSCALL_EXIT, READ),
        ];
        let log = [
            "10 open Syscall(0)",
            "20 cut Syscall(0) from 10",
            "50 open Syscall(0)",
            "60 close Syscall(0) from 50",
        ];
        assert_eq!(run(&records, 70), log);
    }

    #[test]
    fn traps_in_a_call_nest_inside_it_and_a_mismatched_end_is_dropped() {
        let records = [
            (10, trace::SYSCALL_ENTER, WRITE),
            (20, trace::PAGE_FAULT_BEGIN, 0x1000),
            (30, trace::TICK_BEGIN, 1),
            // Not the innermost: the tick stays open, the fault too.
            (35, trace::PAGE_FAULT_END, trace::FAULT_RESOLVED),
            (40, trace::TICK_END, 0),
            (50, trace::PAGE_FAULT_END, trace::FAULT_RESOLVED),
            (60, trace::SYSCALL_EXIT, WRITE),
        ];
        let log = [
            "10 open Syscall(1)",
            "20 open PageFault",
            "30 open Tick",
            "40 close Tick from 30",
            "50 close PageFault from 20",
            "60 close Syscall(1) from 10",
        ];
        assert_eq!(run(&records, 70), log);
    }

    #[test]
    fn idle_cuts_the_call_that_blocked_and_holds_the_interrupts_that_wake_it() {
        let records = [
            (10, trace::SYSCALL_ENTER, READ),
            (20, trace::IDLE_BEGIN, 0),
            (30, trace::TICK_BEGIN, 0),
            (40, trace::TICK_END, 0),
            (44, trace::INTERRUPT_BEGIN, 36),
            (46, trace::INTERRUPT_END, 0),
            (50, trace::IDLE_END, 0),
            (60, trace::IDLE_BEGIN, 0),
        ];
        let log = [
            "10 open Syscall(0)",
            "20 cut Syscall(0) from 10",
            "20 open Idle",
            "30 open Tick",
            "40 close Tick from 30",
            "44 open Interrupt(36)",
            "46 close Interrupt(36) from 44",
            "50 close Idle from 20",
            "60 open Idle",
            "70 cut Idle from 60",
        ];
        assert_eq!(run(&records, 70), log);
    }

    #[test]
    fn an_exception_lasts_until_its_signal_or_the_kernels_next_work() {
        let records = [
            (10, trace::FAULT, 0),
            (20, trace::SIGNAL, 8),
            (30, trace::FAULT, 13),
            (40, trace::SYSCALL_ENTER, WRITE),
            // A signal with no exception open ends nothing.
            (50, trace::SIGNAL, 11),
        ];
        let log = [
            "10 open Exception",
            "20 close Exception from 10",
            "30 open Exception",
            "40 close Exception from 30",
            "40 open Syscall(1)",
            "60 cut Syscall(1) from 40",
        ];
        assert_eq!(run(&records, 60), log);
    }

    #[test]
    fn a_call_whose_end_was_not_recorded_ends_where_the_next_begins() {
        let records = [
            (10, trace::SYSCALL_ENTER, READ),
            (20, trace::SYSCALL_ENTER, WRITE),
            (30, trace::SYSCALL_EXIT, WRITE),
        ];
        let both = [
            "10 open Syscall(0)",
            "20 close Syscall(0) from 10",
            "20 open Syscall(1)",
            "30 close Syscall(1) from 20",
        ];
        assert_eq!(run(&records, 40), both);
    }
}
