//! Where gdb connects (`--gdb PORT` on 127.0.0.1, or `--gdb unix:PATH`) and the connection
//! gdbstub talks through. gdbstub writes a reply one byte at a time; we gather the bytes and send
//! each reply in one write when it flushes.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::str::FromStr;

use super::GdbError;

/// The `--gdb` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GdbAddr {
    /// A TCP port on 127.0.0.1 (0: any free one, printed when listening).
    Tcp(u16),
    /// A Unix socket at this path.
    Unix(PathBuf),
}

impl FromStr for GdbAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<GdbAddr, String> {
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path, e.g. unix:/tmp/lde-gdb.sock".into());
            }
            return Ok(GdbAddr::Unix(PathBuf::from(path)));
        }
        s.parse::<u16>()
            .map(GdbAddr::Tcp)
            .map_err(|_| format!("{s:?} is neither a TCP port (0-65535) nor unix:PATH"))
    }
}

impl fmt::Display for GdbAddr {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            GdbAddr::Tcp(port) => write!(f, "127.0.0.1:{port}"),
            GdbAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// One gdb session's connection.
pub struct GdbConnection {
    stream: Stream,
    /// The reply being written, sent on flush.
    out: Vec<u8>,
    /// Bytes read from gdb and not consumed yet.
    pending: VecDeque<u8>,
}

/// Listens at `addr`, says so on stderr (the line tests and scripts/gdb wait for), and waits
/// for gdb to connect.
pub fn accept(addr: &GdbAddr) -> Result<GdbConnection, GdbError> {
    let listen_err = |e| GdbError::Listen(addr.to_string(), e);
    let stream = match addr {
        GdbAddr::Tcp(port) => {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, *port)).map_err(listen_err)?;
            let port = listener.local_addr().map_err(listen_err)?.port();
            eprintln!("vmm: waiting for gdb on 127.0.0.1:{port} (gdb: target remote :{port})");
            let (s, _) = listener.accept().map_err(GdbError::Accept)?;
            s.set_nodelay(true).map_err(GdbError::Accept)?;
            Stream::Tcp(s)
        }
        GdbAddr::Unix(path) => {
            // A socket left by an earlier run would make bind fail; anything else at the path
            // is not ours to remove.
            if let Ok(meta) = std::fs::symlink_metadata(path) {
                if meta.file_type().is_socket() {
                    let _ = std::fs::remove_file(path);
                }
            }
            let listener = UnixListener::bind(path).map_err(listen_err)?;
            eprintln!(
                "vmm: waiting for gdb on {} (gdb: target remote {})",
                path.display(),
                path.display()
            );
            let accepted = listener.accept();
            // One session per run: nobody else needs the name once gdb is connected.
            let _ = std::fs::remove_file(path);
            Stream::Unix(accepted.map_err(GdbError::Accept)?.0)
        }
    };
    Ok(GdbConnection {
        stream,
        out: Vec::with_capacity(4096),
        pending: VecDeque::new(),
    })
}

impl GdbConnection {
    pub fn raw_fd(&self) -> RawFd {
        match &self.stream {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    fn io(&mut self) -> &mut dyn ReadWrite {
        match &mut self.stream {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }

    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match &self.stream {
            Stream::Tcp(s) => s.set_nonblocking(on),
            Stream::Unix(s) => s.set_nonblocking(on),
        }
    }

    /// The next byte from gdb, waiting for it; `None` when gdb has closed the connection.
    pub fn read_byte(&mut self) -> io::Result<Option<u8>> {
        if self.pending.is_empty() {
            let mut buf = [0u8; 4096];
            let n = loop {
                match self.io().read(&mut buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    r => break r?,
                }
            };
            if n == 0 {
                return Ok(None);
            }
            self.pending.extend(&buf[..n]);
        }
        Ok(self.pending.pop_front())
    }

    /// Everything gdb has sent that has not been read yet, without waiting; `None` when gdb
    /// has closed the connection.
    pub fn read_available(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut got: Vec<u8> = self.pending.drain(..).collect();
        self.set_nonblocking(true)?;
        let mut buf = [0u8; 4096];
        let result = loop {
            match self.io().read(&mut buf) {
                Ok(0) => break Ok(None),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(Some(())),
                Err(e) => break Err(e),
            }
        };
        self.set_nonblocking(false)?;
        Ok(result?.map(|()| got))
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

impl gdbstub::conn::Connection for GdbConnection {
    type Error = io::Error;

    fn write(&mut self, byte: u8) -> io::Result<()> {
        self.out.push(byte);
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let out = std::mem::take(&mut self.out);
        let result = self.io().write_all(&out).and_then(|()| self.io().flush());
        self.out = out;
        self.out.clear();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdb_addresses_parse() {
        assert_eq!("1234".parse(), Ok(GdbAddr::Tcp(1234)));
        assert_eq!("0".parse(), Ok(GdbAddr::Tcp(0)));
        assert_eq!(
            "unix:/tmp/x.sock".parse(),
            Ok(GdbAddr::Unix(PathBuf::from("/tmp/x.sock")))
        );
        assert!("unix:".parse::<GdbAddr>().is_err());
        assert!("70000".parse::<GdbAddr>().is_err());
        assert!("localhost:1234".parse::<GdbAddr>().is_err());
        assert_eq!(GdbAddr::Tcp(9).to_string(), "127.0.0.1:9");
    }
}
