//! sh: a small shell of our own, in the spirit of xv6's. fork, execve, wait and pipe are all it
//! takes to run programs: everything else here is reading words.
//!
//! ```text
//! sh              read commands from standard input (the console), one line at a time
//! sh -i           the same, with a "$ " prompt on standard error
//! sh -c 'CMDS'    run CMDS (lines separated by newlines) and exit
//! ```
//!
//! A line is pipelines separated by `;` (run in turn) or ended by `&` (run in the background,
//! not waited for); a pipeline is commands joined by `|`. Words split as a POSIX shell splits
//! them: `'...'`, `"..."` (with `\"` `\\` `\$` `` \` `` and `$` expansions inside), a backslash,
//! `#` comments; `$?` (the last status), `$$`, `$!` (the last background pid) and `$NAME`
//! (from the environment) expand. A command without `/` runs from `/bin`. Built in: `exit [N]`,
//! `wait [PID]`, `kill [-SIGNAL] PID...`, `true`, `false`, `:`. A command killed by a signal is reported as shells do
//! ("Segmentation fault", "Killed"; not SIGPIPE or SIGINT) and its status is 128 + the signal.
//! `< FILE`, `> FILE` and `>> FILE` redirect a command's standard input or output.
//! Not here (yet): `2>` and descriptor numbers, `&&`, `||`, job control.
//!
//! Input is read one byte per `read`, as POSIX shells read a pipe: whatever follows the current
//! line stays unread for the programs the line runs.
#![no_std]
#![no_main]

use core::ffi::CStr;
use lde_user::{
    Args, Envp, Errno, O_CLOEXEC, SIGINT, SIGPIPE, WaitStatus, close, dup2, eprint, eprintln,
    execve, exit_group, fork, getpid, pipe2, read, waitpid,
};

lde_user::entry!(main);

/// Longest line, and the room its words take once expanded.
const LINE_MAX: usize = 4096;
const ARENA: usize = 8192;
const MAX_TOKENS: usize = 512;
/// Commands in one pipeline, pipelines in one line, words in one command.
const MAX_CMDS: usize = 16;
const MAX_PIPELINES: usize = 64;
const MAX_ARGV: usize = lde_user::MAX_ARGS - 1;
/// Background jobs remembered for `wait`.
const MAX_JOBS: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// A word as written: its bytes in the line.
    Word(usize, usize),
    Pipe,
    Semi,
    Amp,
    /// `<`, `>`, `>>`: the next word names the file.
    In,
    Out,
    Append,
}

/// One expanded command: `n` words from `Shell::words[first]` (offsets in the arena).
#[derive(Clone, Copy)]
struct Cmd {
    first: usize,
    n: usize,
    /// `< FILE`: its name's arena offset.
    input: Option<usize>,
    /// `> FILE` or `>> FILE` (true: append).
    output: Option<(usize, bool)>,
}

const NO_CMD: Cmd = Cmd {
    first: 0,
    n: 0,
    input: None,
    output: None,
};

/// A background job: its pid, and how it ended once reaped.
#[derive(Clone, Copy)]
struct Job {
    pid: i32,
    status: Option<WaitStatus>,
}

struct Shell {
    /// Prompt, and go on after a syntax error (a script stops there, as POSIX says).
    interactive: bool,
    envp: Envp,
    env: Args,
    /// `$?`.
    status: i32,
    /// `$!`.
    last_bg: Option<i32>,
    jobs: [Option<Job>; MAX_JOBS],
    arena: [u8; ARENA],
    used: usize,
    toks: [Tok; MAX_TOKENS],
    ntoks: usize,
    /// The words of the pipeline about to run, as arena offsets.
    words: [usize; MAX_TOKENS],
    nwords: usize,
}

/// Why a line was not run.
type Syntax = &'static str;

impl Shell {
    // ---- words ------------------------------------------------------------------------------

    fn push_byte(&mut self, b: u8) -> Result<(), Syntax> {
        if self.used == ARENA {
            return Err("line too long once expanded");
        }
        self.arena[self.used] = b;
        self.used += 1;
        Ok(())
    }

    fn push_bytes(&mut self, bytes: &[u8]) -> Result<(), Syntax> {
        bytes.iter().try_for_each(|&b| self.push_byte(b))
    }

    fn push_number(&mut self, n: i64) -> Result<(), Syntax> {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut v = n.unsigned_abs();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        if n < 0 {
            self.push_byte(b'-')?;
        }
        self.push_bytes(&digits[i..])
    }

    fn push_tok(&mut self, t: Tok) -> Result<(), Syntax> {
        if self.ntoks == MAX_TOKENS {
            return Err("too many words");
        }
        self.toks[self.ntoks] = t;
        self.ntoks += 1;
        Ok(())
    }

    /// Expands the `$...` at `src[at]` (a `$`) into the arena; returns the bytes it used.
    fn expand(&mut self, src: &[u8], at: usize) -> Result<usize, Syntax> {
        match src.get(at + 1) {
            Some(b'?') => self.push_number(self.status as i64).map(|_| 2),
            Some(b'$') => self.push_number(getpid() as i64).map(|_| 2),
            Some(b'!') => {
                if let Some(pid) = self.last_bg {
                    self.push_number(pid as i64)?;
                }
                Ok(2)
            }
            Some(&c) if c == b'_' || c.is_ascii_alphabetic() => {
                let end = src[at + 1..]
                    .iter()
                    .position(|&c| !(c == b'_' || c.is_ascii_alphanumeric()))
                    .map_or(src.len(), |n| at + 1 + n);
                let name = &src[at + 1..end];
                let env = self.env;
                if let Some(value) = env.env().find_map(|kv| {
                    (kv.len() > name.len() && kv.starts_with(name) && kv[name.len()] == b'=')
                        .then(|| &kv[name.len() + 1..])
                }) {
                    self.push_bytes(value)?;
                }
                Ok(end - at)
            }
            _ => self.push_byte(b'$').map(|_| 1),
        }
    }

    /// Splits `src` into tokens; words stay as written (they expand when their pipeline runs,
    /// so `false; echo $?` sees false's status).
    fn lex(&mut self, src: &[u8]) -> Result<(), Syntax> {
        self.ntoks = 0;
        let mut i = 0;
        loop {
            while i < src.len() && matches!(src[i], b' ' | b'\t' | b'\r') {
                i += 1;
            }
            let Some(&c) = src.get(i) else {
                return Ok(());
            };
            let op = match c {
                b'#' => return Ok(()),
                b'|' if src.get(i + 1) == Some(&b'|') => return Err("|| is not supported"),
                b'&' if src.get(i + 1) == Some(&b'&') => return Err("&& is not supported"),
                b'(' | b')' => return Err("subshells are not supported"),
                b'|' => Some(Tok::Pipe),
                b';' => Some(Tok::Semi),
                b'&' => Some(Tok::Amp),
                b'<' => Some(Tok::In),
                b'>' if src.get(i + 1) == Some(&b'>') => Some(Tok::Append),
                b'>' => Some(Tok::Out),
                _ => None,
            };
            if let Some(op) = op {
                self.push_tok(op)?;
                i += if op == Tok::Append { 2 } else { 1 };
                continue;
            }
            let start = i;
            while let Some(&c) = src.get(i) {
                match c {
                    b' ' | b'\t' | b'\r' | b'|' | b';' | b'&' | b'<' | b'>' | b'(' | b')' => {
                        break;
                    }
                    b'\'' => {
                        let len = src[i + 1..]
                            .iter()
                            .position(|&c| c == b'\'')
                            .ok_or("a ' is not closed")?;
                        i += len + 2;
                    }
                    b'"' => {
                        i += 1;
                        loop {
                            match src.get(i) {
                                None => return Err("a \" is not closed"),
                                Some(b'"') => break,
                                Some(b'\\') => i += 2,
                                Some(_) => i += 1,
                            }
                        }
                        i += 1;
                    }
                    b'\\' => i += 2,
                    _ => i += 1,
                }
            }
            let end = i.min(src.len());
            self.push_tok(Tok::Word(start, end))?;
        }
    }

    /// Expands one word as written (`lex` checked its quotes) into the arena: its offset, or
    /// None for an unquoted expansion to nothing, which is no word at all.
    fn expand_word(&mut self, src: &[u8]) -> Result<Option<usize>, Syntax> {
        let start = self.used;
        let mut quoted = false;
        let mut i = 0;
        while let Some(&c) = src.get(i) {
            match c {
                b'\'' => {
                    quoted = true;
                    let len = src[i + 1..].iter().position(|&c| c == b'\'').unwrap_or(0);
                    self.push_bytes(&src[i + 1..i + 1 + len])?;
                    i += len + 2;
                }
                b'"' => {
                    quoted = true;
                    i += 1;
                    loop {
                        match src.get(i) {
                            None | Some(b'"') => break,
                            Some(b'\\')
                                if matches!(src.get(i + 1), Some(b'"' | b'\\' | b'$' | b'`')) =>
                            {
                                self.push_byte(src[i + 1])?;
                                i += 2;
                            }
                            Some(b'$') => i += self.expand(src, i)?,
                            Some(&c) => {
                                self.push_byte(c)?;
                                i += 1;
                            }
                        }
                    }
                    i += 1;
                }
                b'\\' => {
                    quoted = true;
                    self.push_byte(*src.get(i + 1).unwrap_or(&b'\\'))?;
                    i += 2;
                }
                b'$' => i += self.expand(src, i)?,
                c => {
                    self.push_byte(c)?;
                    i += 1;
                }
            }
        }
        if self.used == start && !quoted {
            return Ok(None);
        }
        self.push_byte(0)?;
        Ok(Some(start))
    }

    /// Expands the words of tokens `toks` of `line`: a command of `words`.
    fn expand_cmd(&mut self, line: &[u8], toks: (usize, usize)) -> Result<Cmd, Syntax> {
        let first = self.nwords;
        let mut cmd = NO_CMD;
        let mut t = toks.0;
        while t < toks.1 {
            let tok = self.toks[t];
            t += 1;
            if let Tok::In | Tok::Out | Tok::Append = tok {
                // The parser checked that a word follows.
                let Some(Tok::Word(a, b)) = self.toks.get(t).copied() else {
                    return Err("a file name is missing");
                };
                t += 1;
                let name = self.expand_word(&line[a..b])?.ok_or("ambiguous redirect")?;
                match tok {
                    Tok::In => cmd.input = Some(name),
                    _ => cmd.output = Some((name, tok == Tok::Append)),
                }
                continue;
            }
            let Tok::Word(a, b) = tok else {
                continue;
            };
            if let Some(off) = self.expand_word(&line[a..b])? {
                if self.nwords == MAX_TOKENS {
                    return Err("too many words");
                }
                self.words[self.nwords] = off;
                self.nwords += 1;
            }
        }
        cmd.first = first;
        cmd.n = self.nwords - first;
        Ok(cmd)
    }

    fn word(&self, off: usize) -> &CStr {
        // expand_word NUL-terminated every word it pushed.
        CStr::from_bytes_until_nul(&self.arena[off..]).unwrap_or(c"")
    }

    // ---- running ----------------------------------------------------------------------------

    /// Runs one line.
    fn run_line(&mut self, line: &[u8]) {
        self.reap_background();
        if let Err(e) = self.lex(line) {
            eprintln!("sh: syntax error: {e}");
            self.syntax_error();
            return;
        }
        // Parse first, as a shell does, so that a syntax error runs nothing.
        let mut cmds = [(0usize, 0usize); MAX_CMDS * 4];
        let mut ncmds = 0;
        let mut pipelines = [(0usize, 0usize, false); MAX_PIPELINES];
        let mut npipes = 0;
        let mut i = 0;
        while i < self.ntoks {
            let first = ncmds;
            loop {
                let start = i;
                while i < self.ntoks {
                    match self.toks[i] {
                        Tok::Word(..) => {}
                        Tok::In | Tok::Out | Tok::Append => {
                            if !matches!(self.toks.get(i + 1), Some(Tok::Word(..)))
                                || i + 1 >= self.ntoks
                            {
                                eprintln!("sh: syntax error: a file name is missing after < or >");
                                self.syntax_error();
                                return;
                            }
                            i += 1;
                        }
                        _ => break,
                    }
                    i += 1;
                }
                if i == start {
                    let what = match self.toks.get(i).filter(|_| i < self.ntoks) {
                        Some(Tok::Pipe) => "unexpected |",
                        Some(Tok::Semi) => "unexpected ;",
                        Some(Tok::Amp) => "unexpected &",
                        _ => "a command is missing after |",
                    };
                    eprintln!("sh: syntax error: {what}");
                    self.syntax_error();
                    return;
                }
                if ncmds == cmds.len() || ncmds - first == MAX_CMDS {
                    eprintln!("sh: too many commands in one line");
                    self.status = 2;
                    return;
                }
                cmds[ncmds] = (start, i);
                ncmds += 1;
                if i < self.ntoks && self.toks[i] == Tok::Pipe {
                    i += 1;
                    continue;
                }
                break;
            }
            let bg = i < self.ntoks && self.toks[i] == Tok::Amp;
            i += 1; // the `;` or `&`, if any
            if npipes == MAX_PIPELINES {
                eprintln!("sh: too many commands in one line");
                self.status = 2;
                return;
            }
            pipelines[npipes] = (first, ncmds - first, bg);
            npipes += 1;
        }
        for &(first, n, bg) in &pipelines[..npipes] {
            self.run_pipeline(line, &cmds[first..first + n], bg);
        }
    }

    /// After a syntax error: status 2, and a script (not an interactive shell) ends there.
    fn syntax_error(&mut self) {
        self.status = 2;
        if !self.interactive {
            exit_group(2);
        }
    }

    /// Runs a builtin if `argv[0]` names one: its status.
    fn builtin(&mut self, cmd: Cmd) -> Option<i32> {
        let name = self.arg(cmd, 0);
        let arg1 = (cmd.n > 1).then(|| self.arg(cmd, 1));
        match name.to_bytes() {
            b"exit" => {
                let code = match arg1 {
                    None => self.status,
                    Some(a) => match parse_number(a.to_bytes()) {
                        Some(n) => n & 0xff,
                        None => {
                            eprintln!("sh: exit: {}: not a number", show(a));
                            2
                        }
                    },
                };
                exit_group(code)
            }
            b"wait" => Some(match arg1 {
                None => {
                    self.wait_all();
                    0
                }
                Some(a) => match parse_number(a.to_bytes()) {
                    Some(pid) => self.wait_job(pid),
                    None => {
                        eprintln!("sh: wait: {}: not a pid", show(a));
                        2
                    }
                },
            }),
            b"kill" => Some(self.kill(cmd)),
            // cd must be the shell's own: a child's chdir would change only the child.
            b"cd" => {
                let to = arg1.map_or(&b"/"[..], |a| a.to_bytes());
                Some(match lde_user::fs::chdir(to) {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("sh: cd: {}: {}", core::str::from_utf8(to).unwrap_or("?"), e);
                        1
                    }
                })
            }
            b"true" | b":" => Some(0),
            b"false" => Some(1),
            _ => None,
        }
    }

    /// `kill [-SIGNAL] PID...`: SIGNAL a number or a name without SIG (default TERM).
    fn kill(&self, cmd: Cmd) -> i32 {
        let mut sig = lde_user::SIGTERM;
        let mut first = 1;
        if let Some(opt) = self.arg(cmd, 1).to_bytes().strip_prefix(b"-")
            && cmd.n > 2
        {
            let by_name = (1..32)
                .find(|&s| abi::signal::name(s).as_bytes().strip_prefix(b"SIG") == Some(opt));
            match parse_number(opt).or(by_name.map(|s| s as i32)) {
                Some(s) => sig = s,
                None => {
                    eprintln!("sh: kill: {}: no such signal", show(self.arg(cmd, 1)));
                    return 2;
                }
            }
            first = 2;
        }
        if cmd.n <= first {
            eprintln!("sh: kill: usage: kill [-SIGNAL] PID...");
            return 2;
        }
        let mut status = 0;
        for i in first..cmd.n {
            let a = self.arg(cmd, i);
            match parse_number(a.to_bytes()) {
                Some(pid) => {
                    if let Err(e) = lde_user::kill(pid, sig) {
                        eprintln!("sh: kill {pid}: {e}");
                        status = 1;
                    }
                }
                None => {
                    eprintln!("sh: kill: {}: not a pid", show(a));
                    status = 2;
                }
            }
        }
        status
    }

    fn arg(&self, cmd: Cmd, i: usize) -> &CStr {
        if i < cmd.n {
            self.word(self.words[cmd.first + i])
        } else {
            c""
        }
    }

    /// Runs `cmds` joined by pipes; waits for them unless `bg`.
    fn run_pipeline(&mut self, line: &[u8], toks: &[(usize, usize)], bg: bool) {
        self.used = 0;
        self.nwords = 0;
        let mut cmds = [NO_CMD; MAX_CMDS];
        for (c, &t) in cmds.iter_mut().zip(toks) {
            match self.expand_cmd(line, t) {
                Ok(cmd) => *c = cmd,
                Err(e) => {
                    eprintln!("sh: {e}");
                    self.status = 2;
                    return;
                }
            }
        }
        let cmds = &cmds[..toks.len()];
        let redirected = cmds[0].input.is_some() || cmds[0].output.is_some();
        if cmds.len() == 1 && !bg && !redirected {
            if cmds[0].n == 0 {
                self.status = 0; // only expansions to nothing: a null command
                return;
            }
            if let Some(status) = self.builtin(cmds[0]) {
                self.status = status;
                return;
            }
        }
        // Close-on-exec pipes: each child dup2s the ends it needs onto 0 and 1 (dup2 clears the
        // flag there), and exec closes every other pipe descriptor it inherited.
        let mut pipes = [(-1, -1); MAX_CMDS];
        for p in pipes.iter_mut().take(cmds.len() - 1) {
            match pipe2(O_CLOEXEC) {
                Ok(fds) => *p = fds,
                Err(e) => {
                    eprintln!("sh: pipe: {e}");
                    close_pipes(&pipes);
                    self.status = 1;
                    return;
                }
            }
        }
        let mut pids = [0i32; MAX_CMDS];
        let mut started = 0;
        for (k, &cmd) in cmds.iter().enumerate() {
            let stdin = if k > 0 { pipes[k - 1].0 } else { 0 };
            let stdout = if k + 1 < cmds.len() { pipes[k].1 } else { 1 };
            match fork() {
                Ok(0) => {
                    if self.interactive {
                        // The keys' signals are for the programs the shell runs, not for it.
                        let _ = lde_user::signal(SIGINT, lde_user::Disposition::Default);
                        let _ = lde_user::signal(lde_user::SIGQUIT, lde_user::Disposition::Default);
                    }
                    if stdin != 0 {
                        let _ = dup2(stdin, 0);
                    }
                    if stdout != 1 {
                        let _ = dup2(stdout, 1);
                    }
                    if let Err(status) = self.redirect(cmd) {
                        exit_group(status);
                    }
                    let status = self.child(cmd);
                    exit_group(status)
                }
                Ok(pid) => {
                    pids[k] = pid;
                    started += 1;
                }
                Err(e) => {
                    eprintln!("sh: fork: {e}");
                    break;
                }
            }
        }
        close_pipes(&pipes);
        if bg {
            for &pid in &pids[..started] {
                self.add_job(pid);
            }
            self.last_bg = pids[..started].last().copied();
            self.status = 0;
            return;
        }
        let mut last = 1; // the status if the last command could not even start
        for (k, &pid) in pids[..started].iter().enumerate() {
            let status = wait_for(pid);
            report_kill(status);
            if k + 1 == cmds.len() {
                last = status.shell_status();
            }
        }
        self.status = last;
    }

    /// In a child: opens the command's files onto 0 and 1 (after the pipes, as a shell does);
    /// Err(1) once it has said why one cannot be opened.
    fn redirect(&self, cmd: Cmd) -> Result<(), i32> {
        use lde_user::fs::{O_APPEND, O_CREAT, O_RDONLY, O_TRUNC, O_WRONLY, open};
        let files = [
            cmd.input.map(|f| (f, O_RDONLY, 0)),
            cmd.output.map(|(f, append)| {
                let how = if append { O_APPEND } else { O_TRUNC };
                (f, O_WRONLY | O_CREAT | how, 1)
            }),
        ];
        for (name, flags, fd) in files.into_iter().flatten() {
            let path = self.word(name);
            match open(path.to_bytes(), flags, 0o666) {
                Ok(new) => {
                    if new != fd {
                        let _ = dup2(new, fd);
                        let _ = close(new);
                    }
                }
                Err(e) => {
                    eprintln!("sh: {}: {e}", show(path));
                    return Err(1);
                }
            }
        }
        Ok(())
    }

    /// In a child: a builtin, or exec the program. Returns the status to exit with if the exec
    /// failed: 127 not found, 126 found but not runnable, as POSIX shells say.
    fn child(&mut self, cmd: Cmd) -> i32 {
        if cmd.n == 0 {
            return 0;
        }
        if let Some(status) = self.builtin(cmd) {
            return status;
        }
        let n = cmd.n;
        if n > MAX_ARGV {
            eprintln!("sh: {}: too many arguments", show(self.arg(cmd, 0)));
            return 126;
        }
        let mut argv: [&CStr; MAX_ARGV] = [c""; MAX_ARGV];
        for (k, slot) in argv.iter_mut().enumerate().take(n) {
            *slot = self.arg(cmd, k);
        }
        let name = argv[0].to_bytes();
        let mut path = [0u8; 256];
        let path = if name.contains(&b'/') {
            argv[0]
        } else {
            let prefix = b"/bin/";
            if prefix.len() + name.len() + 1 > path.len() {
                eprintln!("sh: {}: not found", show(argv[0]));
                return 127;
            }
            path[..prefix.len()].copy_from_slice(prefix);
            path[prefix.len()..prefix.len() + name.len()].copy_from_slice(name);
            CStr::from_bytes_until_nul(&path).unwrap_or(c"")
        };
        let err = execve(path, &argv[..n], self.envp);
        match err {
            Errno::ENOENT | Errno::ENOTDIR => {
                eprintln!("sh: {}: not found", show(argv[0]));
                127
            }
            e => {
                eprintln!("sh: {}: cannot execute: {e}", show(argv[0]));
                126
            }
        }
    }

    // ---- background jobs --------------------------------------------------------------------

    fn add_job(&mut self, pid: i32) {
        if let Some(slot) = self.jobs.iter_mut().find(|j| j.is_none()) {
            *slot = Some(Job { pid, status: None });
        }
        // A full table forgets the job: `wait` still reaps it, with its status unknown.
    }

    /// Reaps finished background jobs without waiting, keeping their statuses for `wait PID`.
    fn reap_background(&mut self) {
        while let Ok(Some((pid, status))) = waitpid(-1, lde_user::WNOHANG) {
            self.record(pid, status);
        }
    }

    fn record(&mut self, pid: i32, status: WaitStatus) {
        if let Some(j) = self.jobs.iter_mut().flatten().find(|j| j.pid == pid) {
            j.status = Some(status);
        }
    }

    /// `wait`: every background job; forgets them all. A kill is reported when the job is
    /// waited for, even if it was reaped before.
    fn wait_all(&mut self) {
        for status in self.jobs.iter().flatten().filter_map(|j| j.status) {
            report_kill(status);
        }
        loop {
            match waitpid(-1, 0) {
                Ok(Some((pid, status))) => {
                    report_kill(status);
                    self.record(pid, status);
                }
                Err(Errno::EINTR) => {}
                _ => break, // ECHILD: none left
            }
        }
        self.jobs = [None; MAX_JOBS];
    }

    /// `wait PID`: its status (once reaped, it is forgotten).
    fn wait_job(&mut self, pid: i32) -> i32 {
        let Some(slot) = self
            .jobs
            .iter_mut()
            .find(|j| j.is_some_and(|j| j.pid == pid))
        else {
            eprintln!("sh: wait: pid {pid} is not a child of this shell");
            return 127;
        };
        let status = slot.and_then(|j| j.status).unwrap_or_else(|| wait_for(pid));
        report_kill(status);
        *slot = None;
        status.shell_status()
    }
}

/// Says what killed a program, as shells do ("Segmentation fault"); not for SIGPIPE, the
/// normal end of a pipeline's writer, or SIGINT.
fn report_kill(status: WaitStatus) {
    if let Some(sig) = status.kill_signal()
        && sig != SIGPIPE
        && sig != SIGINT
    {
        let core = if matches!(status, WaitStatus::Dumped(_)) {
            " (core dumped)"
        } else {
            ""
        };
        eprintln!("{}{core}", abi::signal::description(sig as u32));
    }
}

/// Waits for `pid` to end (not merely stop).
fn wait_for(pid: i32) -> WaitStatus {
    loop {
        match waitpid(pid, 0) {
            Ok(Some((_, s))) => return s,
            Err(Errno::EINTR) | Ok(None) => {}
            Err(e) => {
                eprintln!("sh: wait for {pid}: {e}");
                return WaitStatus::Exited(127);
            }
        }
    }
}

fn close_pipes(pipes: &[(i32, i32)]) {
    for &(r, w) in pipes {
        if r >= 0 {
            let _ = close(r);
        }
        if w >= 0 {
            let _ = close(w);
        }
    }
}

fn parse_number(s: &[u8]) -> Option<i32> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let v = digits
        .iter()
        .fold(0i32, |v, &d| v * 10 + i32::from(d - b'0'));
    Some(if neg { -v } else { v })
}

/// A word for a message.
fn show(s: &CStr) -> &str {
    s.to_str().unwrap_or("?")
}

/// Reads one line from fd 0, a byte at a time (so the rest stays for the programs it runs).
/// None at end of input with nothing read; a line longer than `buf` is cut (and reported).
fn read_line(buf: &mut [u8; LINE_MAX]) -> Option<usize> {
    let mut n = 0;
    let mut cut = false;
    loop {
        let mut b = [0u8; 1];
        match read(0, &mut b) {
            Ok(0) => return (n > 0 || cut).then_some(n),
            Ok(_) if b[0] == b'\n' => break,
            Ok(_) if n < buf.len() => {
                buf[n] = b[0];
                n += 1;
            }
            Ok(_) => cut = true,
            Err(Errno::EINTR) => {}
            Err(e) => {
                eprintln!("sh: reading standard input: {e}");
                return None;
            }
        }
    }
    if cut {
        eprintln!("sh: line longer than {LINE_MAX} bytes: cut");
    }
    Some(n)
}

fn main(args: Args) -> i32 {
    let mut shell = Shell {
        interactive: false,
        envp: args.envp(),
        env: args,
        status: 0,
        last_bg: None,
        jobs: [None; MAX_JOBS],
        arena: [0; ARENA],
        used: 0,
        toks: [Tok::Semi; MAX_TOKENS],
        ntoks: 0,
        words: [0; MAX_TOKENS],
        nwords: 0,
    };
    match (args.get(1), args.get_bytes(2)) {
        (Some("-c"), Some(script)) => {
            for line in script.split(|&b| b == b'\n') {
                shell.run_line(line);
            }
            return shell.status;
        }
        (Some("-c"), None) => {
            eprintln!("sh: -c needs a command string");
            return 2;
        }
        (Some("-i"), _) => {
            // An interactive shell survives Ctrl-C and Ctrl-\ (they stop the program running,
            // in the same foreground group); its children get the default back.
            shell.interactive = true;
            let _ = lde_user::signal(SIGINT, lde_user::Disposition::Ignore);
            let _ = lde_user::signal(lde_user::SIGQUIT, lde_user::Disposition::Ignore);
        }
        (None, _) => {}
        (Some(other), _) => {
            eprintln!("sh: {other}: unknown option (sh [-i | -c COMMANDS])");
            return 2;
        }
    }
    let mut line = [0u8; LINE_MAX];
    loop {
        if shell.interactive {
            eprint!("$ ");
        }
        let Some(n) = read_line(&mut line) else {
            return shell.status;
        };
        shell.run_line(&line[..n]);
    }
}
