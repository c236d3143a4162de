//! Console input: stdin to COM1's receive FIFO, on the event-manager thread. Bytes read from
//! stdin wait in `pending` until the 64-byte FIFO has room; the serial device's `FifoDrained`
//! EventFd says when the guest has emptied it. stdin is only watched while `pending` is short,
//! and dropped at EOF, so a full FIFO or a closed pipe never makes the loop spin.
//! A stdin that epoll cannot watch (/dev/null, a regular file) is simply not used.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};

use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use log::{debug, warn};
use vmm_sys_util::eventfd::EventFd;

use super::serial::SerialDevice;

/// Stop reading stdin while this many bytes wait for the guest.
const PENDING_LIMIT: usize = 4096;

pub struct ConsoleInput {
    serial: Arc<Mutex<SerialDevice>>,
    fifo_drained: EventFd,
    pending: VecDeque<u8>,
    stdin_watched: bool,
    stdin_eof: bool,
}

impl ConsoleInput {
    pub fn new(serial: Arc<Mutex<SerialDevice>>, fifo_drained: EventFd) -> ConsoleInput {
        ConsoleInput {
            serial,
            fifo_drained,
            pending: VecDeque::new(),
            stdin_watched: false,
            stdin_eof: false,
        }
    }

    fn stdin_fd() -> RawFd {
        std::io::stdin().as_raw_fd()
    }

    /// Reads what stdin has now (epoll said it is readable, so this does not block).
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

    /// Watches stdin only while there is room for more input and it has not ended.
    fn update_stdin_interest(&mut self, ops: &mut EventOps) {
        let want = !self.stdin_eof && self.pending.len() < PENDING_LIMIT;
        let events = Events::new_raw(Self::stdin_fd(), EventSet::IN);
        if want && !self.stdin_watched {
            match ops.add(events) {
                Ok(()) => self.stdin_watched = true,
                Err(e) => {
                    debug!("console input: stdin cannot be watched ({e:?}); no console input");
                    self.stdin_eof = true;
                }
            }
        } else if !want && self.stdin_watched {
            let _ = ops.remove(events);
            self.stdin_watched = false;
        }
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
        self.feed_guest();
        self.update_stdin_interest(ops);
    }

    fn init(&mut self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::new(&self.fifo_drained, EventSet::IN)) {
            warn!("console input disabled: {e:?}");
            return;
        }
        self.update_stdin_interest(ops);
    }
}
