//! The terminal's line discipline (Linux's n_tty, in small): what a typed byte does before a
//! program reads it. In canonical mode (ICANON) bytes gather into a line the user can edit
//! (erase, word erase, kill, literal next, reprint) until a newline, an end-of-line character
//! or VEOF ends it; only whole lines are read, and VEOF on its own is a read of 0 bytes:
//! end-of-file. Without ICANON every byte is readable at once, and the reader waits for VMIN
//! of them (the kernel's side). ISIG turns VINTR, VQUIT and VSUSP into signals for the
//! foreground process group, flushing the input unless NOFLSH. ECHO sends typed bytes back,
//! control characters as `^X` under ECHOCTL.
//!
//! VERASE is DEL (0x7f), what the Backspace key of today's terminals sends; ^H erases only if
//! a program makes it VERASE (`stty erase ^H`), as on Linux.
//!
//! Differences from Linux, on purpose: there is no output processing
//! (OPOST is reported but the host terminal does it: a ring-0 instruction costs ~1,450 cycles
//! here, so the guest's output path must not look at each byte), hence echo writes `\n`, not
//! `\r\n`; the column a line starts at is taken as 0 (Linux follows the output to know it), so
//! erasing a tab can misplace the cursor after a prompt; IXON's Ctrl-S/Ctrl-Q are plain bytes.
//!
//! The discipline owns no lock and no device: the kernel feeds it bytes from the UART's
//! interrupt, writes what it echoes, and posts the signals it names.

use abi::signal::{SIGINT, SIGQUIT, SIGTSTP};
use abi::termios::*;

/// Bytes of input the discipline holds (Linux's N_TTY_BUF_SIZE); a power of two.
pub const CAPACITY: usize = 4096;
const MASK: usize = CAPACITY - 1;
const WORDS: usize = CAPACITY / 64;

/// Where echoed bytes go (the console's output).
pub trait Echo {
    fn echo(&mut self, bytes: &[u8]);
}

impl Echo for alloc::vec::Vec<u8> {
    fn echo(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// A bit per buffer position.
#[derive(Clone)]
struct Bits([u64; WORDS]);

impl Bits {
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn set(&mut self, i: usize, v: bool) {
        if v {
            self.0[i / 64] |= 1 << (i % 64);
        } else {
            self.0[i / 64] &= !(1 << (i % 64));
        }
    }
}

pub struct LineDiscipline {
    termios: Termios,
    /// Input, a ring: `len` bytes from `head`. The first `committed` are readable; the rest
    /// is the line being edited (canonical mode only).
    buf: [u8; CAPACITY],
    head: usize,
    len: usize,
    committed: usize,
    /// Positions that end a line (newline, VEOL, VEOL2, VEOF), and those that are a VEOF
    /// (ends the line, is not read).
    delim: Bits,
    eof: Bits,
    /// The previous byte was VLNEXT: take this one literally.
    lnext: bool,
}

impl Default for LineDiscipline {
    fn default() -> Self {
        Self::new()
    }
}

impl LineDiscipline {
    pub const fn new() -> LineDiscipline {
        LineDiscipline {
            termios: Termios::DEFAULT,
            buf: [0; CAPACITY],
            head: 0,
            len: 0,
            committed: 0,
            delim: Bits([0; WORDS]),
            eof: Bits([0; WORDS]),
            lnext: false,
        }
    }

    pub fn termios(&self) -> &Termios {
        &self.termios
    }

    fn lflag(&self, f: u32) -> bool {
        self.termios.lflag & f != 0
    }

    fn iflag(&self, f: u32) -> bool {
        self.termios.iflag & f != 0
    }

    pub fn canonical(&self) -> bool {
        self.lflag(ICANON)
    }

    /// VMIN and VTIME (tenths of a second), which a non-canonical read waits by.
    pub fn vmin_vtime(&self) -> (u8, u8) {
        (self.termios.cc[VMIN], self.termios.cc[VTIME])
    }

    /// New settings (TCSETS*). Leaving canonical mode makes the line being edited readable;
    /// entering it makes what is waiting readable as it is (Linux "pushes" it), so nothing
    /// typed is lost or held back by the change.
    pub fn set_termios(&mut self, t: Termios) {
        if (t.lflag ^ self.termios.lflag) & ICANON != 0 {
            self.committed = self.len;
            self.lnext = false;
        }
        self.termios = t;
    }

    /// Drops all input (TCSETSF, TCFLSH, a signal key without NOFLSH).
    pub fn flush_input(&mut self) {
        self.head = 0;
        self.len = 0;
        self.committed = 0;
        self.lnext = false;
    }

    /// The host's input has ended: the line being edited becomes readable as it is, so the
    /// last line of a file without a newline still reaches the reader.
    pub fn end_of_input(&mut self) {
        self.committed = self.len;
    }

    /// Whether a read would return now: a whole line (or VEOF) in canonical mode, any byte
    /// otherwise.
    pub fn readable(&self) -> bool {
        if self.canonical() {
            self.committed > 0
        } else {
            self.len > 0
        }
    }

    /// Bytes a read could take now (the non-canonical VMIN check uses it).
    pub fn waiting(&self) -> usize {
        self.committed
    }

    /// FIONREAD: readable bytes, VEOF markers not counted (as Linux's TIOCINQ).
    pub fn bytes_readable(&self) -> usize {
        if !self.canonical() {
            return self.len;
        }
        (0..self.committed)
            .filter(|&i| !self.eof.get(self.pos(i)))
            .count()
    }

    fn pos(&self, i: usize) -> usize {
        (self.head + i) & MASK
    }

    /// Takes readable input into `out`: in canonical mode at most one line (a VEOF ending it is
    /// taken but not copied, so VEOF alone reads as 0 bytes); otherwise what fits. Returns
    /// the bytes copied, and whether the same read may go on into a further buffer (`out`
    /// filled up before the line, or the input, ended).
    pub fn read(&mut self, out: &mut [u8]) -> (usize, bool) {
        let canonical = self.canonical();
        let (mut n, mut taken) = (0, 0);
        let mut line_end = false;
        while taken < self.committed && n < out.len() {
            let p = self.pos(taken);
            taken += 1;
            if canonical && self.eof.get(p) {
                line_end = true;
                break;
            }
            out[n] = self.buf[p];
            n += 1;
            if canonical && self.delim.get(p) {
                line_end = true;
                break;
            }
        }
        self.head = (self.head + taken) & MASK;
        self.len -= taken;
        self.committed -= taken;
        (n, !line_end && n == out.len() && self.committed > 0)
    }

    fn push(&mut self, b: u8, delim: bool, eof: bool) -> bool {
        if self.len == CAPACITY {
            return false;
        }
        let p = self.pos(self.len);
        self.buf[p] = b;
        self.delim.set(p, delim);
        self.eof.set(p, eof);
        self.len += 1;
        true
    }

    /// The byte the user typed, `b`: edits the line, or becomes input, or a signal. Returns the
    /// signal for the foreground process group, if `b` is a signal key.
    pub fn receive(&mut self, mut b: u8, out: &mut impl Echo) -> Option<u32> {
        if self.iflag(ISTRIP) {
            b &= 0x7f;
        }
        if self.lnext {
            self.lnext = false;
            self.store(b, false, out);
            return None;
        }
        if b == b'\r' {
            if self.iflag(IGNCR) {
                return None;
            }
            if self.iflag(ICRNL) {
                b = b'\n';
            }
        } else if b == b'\n' && self.iflag(INLCR) {
            b = b'\r';
        }
        let cc = self.termios.cc;
        let is = |i: usize| cc[i] != VDISABLE && cc[i] == b;
        if self.lflag(ISIG) {
            let sig = if is(VINTR) {
                Some(SIGINT)
            } else if is(VQUIT) {
                Some(SIGQUIT)
            } else if is(VSUSP) {
                Some(SIGTSTP)
            } else {
                None
            };
            if sig.is_some() {
                if !self.lflag(NOFLSH) {
                    self.flush_input();
                }
                if self.lflag(ECHO) {
                    self.echo_char(b, out);
                }
                return sig;
            }
        }
        if !self.canonical() {
            self.store(b, false, out);
            return None;
        }
        let iexten = self.lflag(IEXTEN);
        if is(VERASE) {
            self.erase(Erase::Char, out);
        } else if iexten && is(VWERASE) {
            self.erase(Erase::Word, out);
        } else if is(VKILL) {
            self.erase(Erase::Line, out);
        } else if iexten && is(VLNEXT) {
            self.lnext = true;
            if self.lflag(ECHO) && self.lflag(ECHOCTL) {
                out.echo(b"^\x08");
            }
        } else if iexten && is(VREPRINT) {
            if self.lflag(ECHO) {
                self.echo_char(b, out);
                out.echo(b"\n");
                for i in self.committed..self.len {
                    let c = self.buf[self.pos(i)];
                    self.echo_char(c, out);
                }
            }
        } else if b == b'\n' {
            if self.line_room(true) && self.push(b, true, false) {
                self.committed = self.len;
                if self.lflag(ECHO) || self.lflag(ECHONL) {
                    out.echo(b"\n");
                }
            }
        } else if is(VEOF) {
            if self.line_room(true) && self.push(VDISABLE, true, true) {
                self.committed = self.len;
            }
        } else if is(VEOL) || is(VEOL2) {
            if self.line_room(true) && self.push(b, true, false) {
                self.committed = self.len;
                if self.lflag(ECHO) {
                    self.echo_char(b, out);
                }
            }
        } else {
            self.store(b, false, out);
        }
        None
    }

    /// Whether input should wait where it is (in the UART) instead of coming in: the buffer
    /// is full and a reader can empty it (complete lines, or any bytes when not canonical).
    /// A canonical line that fills the buffer without ending is not throttled: its further
    /// bytes are dropped, as on Linux, or no reader could ever make room.
    pub fn should_throttle(&self) -> bool {
        self.intake_room() == Some(0)
    }

    /// How many more bytes may come in before input must wait (`should_throttle`), or None
    /// when it never waits (a canonical line that does not end drops what does not fit).
    pub fn intake_room(&self) -> Option<usize> {
        if !self.canonical() {
            Some(CAPACITY - self.len)
        } else if self.committed > 0 {
            Some((CAPACITY - 1).saturating_sub(self.len))
        } else {
            None
        }
    }

    /// In canonical mode the last byte of room is kept for the byte that ends the line.
    fn line_room(&self, ends_line: bool) -> bool {
        ends_line || !self.canonical() || self.len < CAPACITY - 1
    }

    /// An ordinary byte: into the line (canonical) or straight to the reader.
    fn store(&mut self, b: u8, ends_line: bool, out: &mut impl Echo) {
        if !self.line_room(ends_line) || !self.push(b, ends_line, false) {
            return;
        }
        if !self.canonical() {
            self.committed = self.len;
        }
        if self.lflag(ECHO) {
            self.echo_char(b, out);
        }
    }

    fn shows_as_caret(&self, c: u8) -> bool {
        self.lflag(ECHOCTL) && (c < 0x20 || c == 0x7f) && c != b'\t' && c != b'\n'
    }

    fn echo_char(&self, c: u8, out: &mut impl Echo) {
        if self.shows_as_caret(c) {
            out.echo(&[b'^', c ^ 0x40]);
        } else {
            out.echo(&[c]);
        }
    }

    /// The screen column after the first `upto` bytes of the line being edited (from 0).
    fn column(&self, upto: usize) -> usize {
        let mut col = 0;
        for i in self.committed..upto {
            let c = self.buf[self.pos(i)];
            col = if c == b'\t' {
                (col | 7) + 1
            } else if self.shows_as_caret(c) {
                col + 2
            } else {
                col + 1
            };
        }
        col
    }

    fn erase(&mut self, kind: Erase, out: &mut impl Echo) {
        if self.len == self.committed {
            return;
        }
        let echo = self.lflag(ECHO);
        let visual = echo && self.lflag(ECHOE) && (kind != Erase::Line || self.lflag(ECHOKE));
        if kind == Erase::Line && echo && !visual {
            // The kill character, then (ECHOK) a fresh line, as Linux without ECHOKE.
            self.echo_char(self.termios.cc[VKILL], out);
            if self.lflag(ECHOK) {
                out.echo(b"\n");
            }
            self.len = self.committed;
            return;
        }
        let mut seen_word = false;
        while self.len > self.committed {
            let c = self.buf[self.pos(self.len - 1)];
            if kind == Erase::Word {
                if c.is_ascii_alphanumeric() || c == b'_' {
                    seen_word = true;
                } else if seen_word {
                    break;
                }
            }
            let before = self.column(self.len - 1);
            let after = self.column(self.len);
            self.len -= 1;
            if visual {
                for _ in before..after {
                    out.echo(b"\x08 \x08");
                }
            } else if echo {
                self.echo_char(self.termios.cc[VERASE], out);
            }
            if kind == Erase::Char {
                break;
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Erase {
    Char,
    Word,
    Line,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn typed(ld: &mut LineDiscipline, keys: &[u8]) -> (Vec<u8>, Vec<u32>) {
        let mut echo = Vec::new();
        let mut sigs = Vec::new();
        for &k in keys {
            sigs.extend(ld.receive(k, &mut echo));
        }
        (echo, sigs)
    }

    fn read_all(ld: &mut LineDiscipline, max: usize) -> Vec<u8> {
        let mut b = alloc::vec![0u8; max];
        let (n, _) = ld.read(&mut b);
        b.truncate(n);
        b
    }

    fn raw(ld: &mut LineDiscipline, vmin: u8) {
        let mut t = *ld.termios();
        t.lflag &= !(ICANON | ECHO | ISIG);
        t.iflag &= !ICRNL;
        t.cc[VMIN] = vmin;
        ld.set_termios(t);
    }

    #[test]
    fn a_line_is_readable_only_when_it_ends_and_is_echoed() {
        let mut ld = LineDiscipline::new();
        let (echo, _) = typed(&mut ld, b"ls -l");
        assert_eq!(echo, b"ls -l");
        assert!(!ld.readable());
        let (echo, _) = typed(&mut ld, b"\r"); // Enter sends CR; ICRNL makes it a newline
        assert_eq!(echo, b"\n");
        assert!(ld.readable());
        assert_eq!(read_all(&mut ld, 100), b"ls -l\n");
        assert!(!ld.readable());
    }

    #[test]
    fn a_read_takes_one_line_at_most_and_a_short_buffer_leaves_the_rest() {
        let mut ld = LineDiscipline::new();
        typed(&mut ld, b"one\ntwo\n");
        assert_eq!(ld.read(&mut [0; 2]), (2, true));
        assert_eq!(read_all(&mut ld, 1), b"e");
        assert_eq!(ld.read(&mut [0; 1]), (1, false)); // the newline ends the read
        assert_eq!(ld.bytes_readable(), 4);
        assert_eq!(read_all(&mut ld, 100), b"two\n");
    }

    #[test]
    fn erase_removes_the_typo_and_the_screen_follows() {
        let mut ld = LineDiscipline::new();
        let (echo, _) = typed(&mut ld, b"ecjo\x7f\x7fho hi\x7fi\n");
        assert_eq!(read_all(&mut ld, 100), b"echo hi\n");
        assert_eq!(echo, b"ecjo\x08 \x08\x08 \x08ho hi\x08 \x08i\n");
        // Nothing to erase: nothing echoed.
        let (echo, _) = typed(&mut ld, b"\x7f");
        assert!(echo.is_empty());
        // ^H is a byte like others unless it is VERASE.
        typed(&mut ld, b"a\x08\n");
        assert_eq!(read_all(&mut ld, 100), b"a\x08\n");
        let mut t = *ld.termios();
        t.cc[VERASE] = 0x08;
        ld.set_termios(t);
        typed(&mut ld, b"ab\x08\n");
        assert_eq!(read_all(&mut ld, 100), b"a\n");
        ld.set_termios(Termios::DEFAULT);
        // A control character shown as ^A takes two columns to erase.
        let (echo, _) = typed(&mut ld, b"\x01\x7f");
        assert_eq!(echo, b"^A\x08 \x08\x08 \x08");
    }

    #[test]
    fn kill_and_word_erase_edit_only_the_current_line() {
        let mut ld = LineDiscipline::new();
        typed(&mut ld, b"kept\n");
        let (echo, _) = typed(&mut ld, b"abc\x15");
        assert_eq!(echo, b"abc\x08 \x08\x08 \x08\x08 \x08");
        typed(&mut ld, b"cp a.txt  \x17b\n");
        assert_eq!(read_all(&mut ld, 100), b"kept\n");
        assert_eq!(read_all(&mut ld, 100), b"cp a.b\n");
    }

    #[test]
    fn ctrl_d_ends_a_line_without_a_newline_and_alone_reads_as_end_of_file() {
        let mut ld = LineDiscipline::new();
        let (echo, _) = typed(&mut ld, b"abc\x04");
        assert_eq!(echo, b"abc");
        assert!(ld.readable());
        assert_eq!(ld.bytes_readable(), 3);
        assert_eq!(read_all(&mut ld, 100), b"abc");
        typed(&mut ld, b"\x04");
        assert!(ld.readable());
        assert_eq!(read_all(&mut ld, 100), b"");
        assert!(!ld.readable());
    }

    #[test]
    fn signal_keys_flush_input_unless_noflsh() {
        let mut ld = LineDiscipline::new();
        typed(&mut ld, b"done\n");
        let (echo, sigs) = typed(&mut ld, b"partial\x03");
        assert_eq!(sigs, [SIGINT]);
        assert!(echo.ends_with(b"^C"));
        assert!(!ld.readable());
        assert_eq!(ld.bytes_readable(), 0);
        let (_, sigs) = typed(&mut ld, b"\x1c\x1a");
        assert_eq!(sigs, [SIGQUIT, SIGTSTP]);

        let mut t = *ld.termios();
        t.lflag |= NOFLSH;
        ld.set_termios(t);
        typed(&mut ld, b"kept\n\x03");
        assert_eq!(read_all(&mut ld, 100), b"kept\n");

        // Without ISIG ^C is a byte like any other.
        t.lflag &= !ISIG;
        ld.set_termios(t);
        let (_, sigs) = typed(&mut ld, b"\x03\n");
        assert!(sigs.is_empty());
        assert_eq!(read_all(&mut ld, 100), b"\x03\n");
    }

    #[test]
    fn raw_mode_hands_over_each_byte_unechoed_and_unchanged() {
        let mut ld = LineDiscipline::new();
        raw(&mut ld, 1);
        let (echo, sigs) = typed(&mut ld, b"q\r\x03\x7f");
        assert!(echo.is_empty() && sigs.is_empty());
        assert!(ld.readable());
        assert_eq!(ld.waiting(), 4);
        assert_eq!(read_all(&mut ld, 1), b"q");
        assert_eq!(read_all(&mut ld, 10), b"\r\x03\x7f");
        assert_eq!(ld.vmin_vtime(), (1, 0));
    }

    #[test]
    fn switching_modes_keeps_what_was_typed() {
        let mut ld = LineDiscipline::new();
        typed(&mut ld, b"half");
        raw(&mut ld, 1);
        assert_eq!(ld.waiting(), 4);
        typed(&mut ld, b"!");
        ld.set_termios(Termios::DEFAULT);
        // Back in canonical mode what waited is readable as it is.
        assert!(ld.readable());
        assert_eq!(read_all(&mut ld, 100), b"half!");
    }

    #[test]
    fn literal_next_and_cr_handling() {
        let mut ld = LineDiscipline::new();
        typed(&mut ld, b"a\x16\x7f\x16\x03\n");
        assert_eq!(read_all(&mut ld, 100), b"a\x7f\x03\n");
        let mut t = *ld.termios();
        t.iflag = IGNCR;
        ld.set_termios(t);
        typed(&mut ld, b"x\ry\n");
        assert_eq!(read_all(&mut ld, 100), b"xy\n");
        t.iflag = 0;
        ld.set_termios(t);
        typed(&mut ld, b"x\r\n");
        assert_eq!(read_all(&mut ld, 100), b"x\r\n");
    }

    #[test]
    fn echo_off_still_edits() {
        let mut ld = LineDiscipline::new();
        let mut t = *ld.termios();
        t.lflag &= !ECHO;
        ld.set_termios(t);
        let (echo, _) = typed(&mut ld, b"pw\x7fd\n");
        assert!(echo.is_empty());
        assert_eq!(read_all(&mut ld, 100), b"pd\n");
        // ECHONL shows the newline alone.
        t.lflag |= ECHONL;
        ld.set_termios(t);
        let (echo, _) = typed(&mut ld, b"s\n");
        assert_eq!(echo, b"\n");
    }

    #[test]
    fn a_full_buffer_keeps_room_for_the_newline_and_wraps_around() {
        let mut ld = LineDiscipline::new();
        for _ in 0..CAPACITY + 10 {
            typed(&mut ld, b"x");
        }
        typed(&mut ld, b"\n");
        assert!(ld.readable());
        let line = read_all(&mut ld, CAPACITY + 10);
        assert_eq!(line.len(), CAPACITY);
        assert_eq!(line.last(), Some(&b'\n'));
        // The ring wraps: many short lines after the head moved.
        for i in 0..3 * CAPACITY / 4 {
            typed(&mut ld, &[b'a' + (i % 26) as u8, b'\n']);
            assert_eq!(read_all(&mut ld, 10), [b'a' + (i % 26) as u8, b'\n']);
        }
    }

    #[test]
    fn the_end_of_input_makes_a_last_line_without_newline_readable() {
        let mut ld = LineDiscipline::new();
        typed(&mut ld, b"a\nlast");
        assert_eq!(read_all(&mut ld, 100), b"a\n");
        assert!(!ld.readable());
        ld.end_of_input();
        assert_eq!(read_all(&mut ld, 100), b"last");
    }

    #[test]
    fn disabled_characters_do_nothing_special() {
        let mut ld = LineDiscipline::new();
        let mut t = *ld.termios();
        t.cc[VINTR] = VDISABLE;
        ld.set_termios(t);
        let (_, sigs) = typed(&mut ld, b"\x03\x00\n");
        assert!(sigs.is_empty());
        assert_eq!(read_all(&mut ld, 100), b"\x03\x00\n");
    }
}
