//! Console input: stdin to COM1's receive FIFO, on the event-manager thread. Bytes read from
//! stdin wait in `pending` until the 64-byte FIFO has room; the serial device's `FifoDrained`
//! EventFd says when the guest has emptied it. stdin is only watched while `pending` is short,
//! and dropped at EOF, so a full FIFO or a closed pipe never makes the loop spin.
//! A stdin that epoll cannot watch (a regular file, /dev/null) never blocks: it is read
//! directly, a buffer's worth whenever the guest has drained the FIFO.
//! Once stdin has ended and the last byte is in the FIFO, the console-status port says so
//! (`console_status.rs`) and IRQ 4 is raised, so that a guest blocked on the console wakes,
//! reads what is left and then gets end-of-file.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};

use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use log::{debug, warn};
use vmm_sys_util::eventfd::EventFd;

use super::console_status::ConsoleStatus;
use super::serial::SerialDevice;

/// Stop reading stdin while this many bytes wait for the guest.
const PENDING_LIMIT: usize = 4096;

pub struct ConsoleInput {
    serial: Arc<Mutex<SerialDevice>>,
    fifo_drained: EventFd,
    /// The UART's interrupt line (GSI 4), raised when the input ends.
    irq: EventFd,
    status: Arc<ConsoleStatus>,
    pending: VecDeque<u8>,
    stdin_watched: bool,
    /// stdin cannot be watched by epoll (a regular file, /dev/null): read it when there is room.
    stdin_direct: bool,
    stdin_eof: bool,
}

impl ConsoleInput {
    pub fn new(
        serial: Arc<Mutex<SerialDevice>>,
        fifo_drained: EventFd,
        irq: EventFd,
        status: Arc<ConsoleStatus>,
    ) -> ConsoleInput {
        ConsoleInput {
            serial,
            fifo_drained,
            irq,
            status,
            pending: VecDeque::new(),
            stdin_watched: false,
            stdin_direct: false,
            stdin_eof: false,
        }
    }

    fn stdin_fd() -> RawFd {
        std::io::stdin().as_raw_fd()
    }

    /// Reads what stdin has now (epoll said it is readable, or it is a file: this does not
    /// block).
    fn read_stdin(&mut self) {
        let mut buf = [0u8; 256];
        // SAFETY: `buf` is a valid, writable buffer of `buf.len()` bytes for the whole call,
        // and fd 0 stays open for the life of the process.
        let n = unsafe { libc::read(Self::stdin_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match n {
            0 => self.stdin_eof = true,
            n if n > 0 => self.pending.extend(&buf[..n as usize]),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::Interrupted
                {
                    warn!("console input: reading stdin failed, no more input: {e}");
                    self.stdin_eof = true;
                }
            }
        }
    }

    /// Tops `pending` up from a stdin that epoll cannot watch.
    fn read_direct(&mut self) {
        while self.stdin_direct && !self.stdin_eof && self.pending.len() < PENDING_LIMIT {
            let before = self.pending.len();
            self.read_stdin();
            if self.pending.len() == before && !self.stdin_eof {
                break; // EAGAIN or EINTR: try again at the next drain
            }
        }
    }

    /// Moves as much of `pending` into the FIFO as fits (it raises IRQ 4 itself).
    fn feed_guest(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut serial = self.serial.lock().unwrap_or_else(|e| e.into_inner());
        let room = serial.fifo_capacity().min(self.pending.len());
        if room == 0 {
            return;
        }
        let chunk: Vec<u8> = self.pending.iter().take(room).copied().collect();
        match serial.enqueue_raw_bytes(&chunk) {
            Ok(n) => {
                self.pending.drain(..n);
            }
            Err(e) => debug!("console input: FIFO not fed: {e:?}"),
        }
    }

    /// Once stdin has ended and nothing waits to enter the FIFO: the status port says so, and
    /// IRQ 4 makes the guest look.
    fn report_end(&mut self) {
        if self.stdin_eof && self.pending.is_empty() && self.status.set_input_ended() {
            debug!("console input: stdin ended, told the guest");
            if let Err(e) = self.irq.write(1) {
                warn!("console input: cannot raise IRQ 4 for the end of input: {e}");
            }
        }
    }

    /// Watches stdin only while there is room for more input and it has not ended.
    fn update_stdin_interest(&mut self, ops: &mut EventOps) {
        let want = !self.stdin_eof && !self.stdin_direct && self.pending.len() < PENDING_LIMIT;
        let events = Events::new_raw(Self::stdin_fd(), EventSet::IN);
        if want && !self.stdin_watched {
            match ops.add(events) {
                Ok(()) => self.stdin_watched = true,
                Err(e) => {
                    debug!("console input: stdin cannot be watched ({e:?}); reading it directly");
                    self.stdin_direct = true;
                }
            }
        } else if !want && self.stdin_watched {
            let _ = ops.remove(events);
            self.stdin_watched = false;
        }
    }

    fn step(&mut self, ops: &mut EventOps) {
        self.update_stdin_interest(ops);
        self.read_direct();
        self.feed_guest();
        self.update_stdin_interest(ops);
        self.report_end();
    }
}

impl MutEventSubscriber for ConsoleInput {
    fn process(&mut self, events: Events, ops: &mut EventOps) {
        if events.fd() == self.fifo_drained.as_raw_fd() {
            let _ = self.fifo_drained.read();
        } else if events.fd() == Self::stdin_fd() {
            if events.event_set().contains(EventSet::IN) {
                self.read_stdin();
            } else {
                // Hang-up or error without data: the other end is gone.
                self.stdin_eof = true;
            }
        }
        self.step(ops);
    }

    fn init(&mut self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::new(&self.fifo_drained, EventSet::IN)) {
            warn!("console input disabled: {e:?}");
            self.stdin_eof = true; // no input will ever come: say so, or readers wait forever
            self.report_end();
            return;
        }
        self.step(ops);
    }
}
