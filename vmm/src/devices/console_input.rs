//! Console input: stdin to COM1's receive FIFO, on the event-manager thread; or to the virtio
//! console's receive queue once its driver is live (DRIVER_OK with queue 0 ready: from then on
//! COM1 gets no more, until the driver resets the device). Bytes read from stdin wait in
//! `pending` until the 64-byte FIFO has room, or until the driver posts receive buffers; the
//! serial device's `FifoDrained` EventFd and the virtio console's `rx_kick` say when. stdin is only watched while `pending` is short,
//! and dropped at EOF, so a full FIFO or a closed pipe never makes the loop spin. A stdin
//! that epoll cannot watch (a regular file, /dev/null) never blocks: it is read directly,
//! a buffer's worth each time the FIFO drains. Once stdin has ended and all of it is in the
//! FIFO (or in the guest's virtio buffers), the console-status port says so
//! (console_status.rs): the guest's reads then end.
//!
//! When stdin is a terminal in raw mode (terminal.rs), Ctrl-A is the escape key, as in QEMU:
//! Ctrl-A x ends the VMM (the guest may never exit by itself), Ctrl-A Ctrl-A sends one Ctrl-A,
//! Ctrl-A h lists the keys; Ctrl-A before any other key sends both. SIGWINCH brings the new
//! window size to the status port and raises COM1's interrupt, so the guest hears of it, and
//! to the virtio console's configuration space (a config-change interrupt).

use std::collections::VecDeque;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::{Arc, Mutex};

use event_manager::{EventOps, EventSet, Events, MutEventSubscriber};
use log::{debug, warn};
use vmm_sys_util::eventfd::EventFd;

use super::console_status::ConsoleStatus;
use super::serial::SerialDevice;
use super::virtio_console::{InputRoute, VirtioConsole};
use crate::terminal;

/// Stop reading stdin while this many bytes wait for the guest.
const PENDING_LIMIT: usize = 4096;
/// The escape key: Ctrl-A.
pub const ESCAPE: u8 = 0x01;

pub struct ConsoleInput {
    serial: Arc<Mutex<SerialDevice>>,
    fifo_drained: EventFd,
    status: Arc<ConsoleStatus>,
    /// COM1's interrupt line, raised when the window size changes.
    irq: EventFd,
    /// Written by the SIGWINCH handler.
    winch: EventFd,
    /// Written on Ctrl-A x: the event loop ends the run.
    quit: EventFd,
    pending: VecDeque<u8>,
    stdin_watched: bool,
    /// stdin cannot be watched (a regular file): read it whenever there is room.
    stdin_direct: bool,
    stdin_eof: bool,
    /// Ctrl-A was typed; the next key is a command.
    escape: bool,
    /// The virtio console, and what it writes when input may flow to it anew.
    virtio: Option<(Arc<Mutex<VirtioConsole>>, EventFd)>,
}

impl ConsoleInput {
    pub fn new(
        serial: Arc<Mutex<SerialDevice>>,
        fifo_drained: EventFd,
        status: Arc<ConsoleStatus>,
        irq: EventFd,
        quit: EventFd,
    ) -> std::io::Result<ConsoleInput> {
        let winch = EventFd::new(libc::EFD_NONBLOCK)?;
        terminal::set_winch_fd(winch.as_raw_fd());
        Ok(ConsoleInput {
            serial,
            fifo_drained,
            status,
            irq,
            winch,
            quit,
            pending: VecDeque::new(),
            stdin_watched: false,
            stdin_direct: false,
            stdin_eof: false,
            escape: false,
            virtio: None,
        })
    }

    /// Input also goes to `device` once its driver is live; `rx_kick` is its `rx_kick`.
    pub fn with_virtio(mut self, device: Arc<Mutex<VirtioConsole>>, rx_kick: EventFd) -> Self {
        self.virtio = Some((device, rx_kick));
        self
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
            n if n > 0 => {
                let bytes = &buf[..n as usize];
                if terminal::is_raw() {
                    self.keys(bytes);
                } else {
                    self.pending.extend(bytes);
                }
            }
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::WouldBlock
                    && e.kind() != std::io::ErrorKind::Interrupted
                {
                    // A terminal that hung up reads EIO: that is its end too.
                    debug!("console input: reading stdin failed, no more input: {e}");
                    self.stdin_eof = true;
                }
            }
        }
    }

    /// Keys from the terminal: the escape key's commands are taken out, the rest queued.
    fn keys(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if !self.escape {
                if b == ESCAPE {
                    self.escape = true;
                } else {
                    self.pending.push_back(b);
                }
                continue;
            }
            self.escape = false;
            match b {
                b'x' | b'X' => {
                    let _ = self.quit.write(1);
                }
                ESCAPE => self.pending.push_back(ESCAPE),
                b'h' | b'H' | b'?' => {
                    let mut err = std::io::stderr();
                    let _ = write!(
                        err,
                        "\r\nvmm: Ctrl-A x  quit the VMM\r\nvmm: Ctrl-A Ctrl-A  send Ctrl-A\r\n"
                    );
                }
                _ => self.pending.extend([ESCAPE, b]),
            }
        }
    }

    /// Moves as much of `pending` into the FIFO as fits (it raises IRQ 4 itself), or into the
    /// virtio console's posted buffers.
    fn feed_guest(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        // Decided, and the FIFO fed, under the virtio console's lock: the driver's DRIVER_OK,
        // which takes input away from COM1, then falls wholly before or after a feed, so every
        // byte COM1 got comes before every byte the virtio queue gets.
        let mut virtio = self
            .virtio
            .as_ref()
            .map(|(v, _)| v.lock().unwrap_or_else(|e| e.into_inner()));
        if let Some(device) = virtio.as_deref_mut() {
            if device.input_route() == InputRoute::Virtio {
                device.receive(&mut self.pending);
                return;
            }
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
        if self.stdin_direct {
            if want {
                self.read_stdin();
            }
            return;
        }
        let events = Events::new_raw(Self::stdin_fd(), EventSet::IN);
        if want && !self.stdin_watched {
            match ops.add(events) {
                Ok(()) => self.stdin_watched = true,
                Err(e) => {
                    debug!("console input: stdin cannot be watched ({e:?}); read directly");
                    self.stdin_direct = true;
                    self.read_stdin();
                }
            }
        } else if !want && self.stdin_watched {
            let _ = ops.remove(events);
            self.stdin_watched = false;
        }
    }

    /// The end of input reaches the guest once every byte before it is in the FIFO, with an
    /// interrupt, so that a reader blocked on an empty console looks again.
    fn update_status(&mut self) {
        if self.stdin_eof && self.pending.is_empty() && self.status.set_input_ended() {
            let _ = self.irq.write(1);
            if let Some((device, _)) = &self.virtio {
                device
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .input_ended();
            }
        }
    }

    fn window_changed(&mut self) {
        let _ = self.winch.read();
        if self.status.set_winsize(terminal::window_size()) {
            let _ = self.irq.write(1);
            if let Some((device, _)) = &self.virtio {
                device
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .set_winsize(self.status.winsize());
            }
        }
    }
}

impl MutEventSubscriber for ConsoleInput {
    fn process(&mut self, events: Events, ops: &mut EventOps) {
        let rx_kick = self.virtio.as_ref().map(|(_, kick)| kick.as_raw_fd());
        if events.fd() == self.fifo_drained.as_raw_fd() {
            let _ = self.fifo_drained.read();
        } else if Some(events.fd()) == rx_kick {
            if let Some((_, kick)) = &self.virtio {
                let _ = kick.read();
            }
        } else if events.fd() == self.winch.as_raw_fd() {
            self.window_changed();
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
        self.feed_guest();
        self.update_status();
    }

    fn init(&mut self, ops: &mut EventOps) {
        if let Err(e) = ops.add(Events::new(&self.fifo_drained, EventSet::IN)) {
            warn!("console input disabled: {e:?}");
            self.stdin_eof = true;
            self.update_status();
            return;
        }
        if let Err(e) = ops.add(Events::new(&self.winch, EventSet::IN)) {
            warn!("window size changes not followed: {e:?}");
        }
        if let Some((_, kick)) = &self.virtio {
            if let Err(e) = ops.add(Events::new(kick, EventSet::IN)) {
                warn!("virtio console input not followed: {e:?}");
            }
        }
        self.update_stdin_interest(ops);
        self.feed_guest();
        self.update_status();
    }
}
