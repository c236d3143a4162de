//! `--trace FILE`: the kernel's event records (abi::trace: a buffer in guest memory the kernel
//! hands over when full, and the VMM reads at the end, while it runs with `trace=events`) and
//! the VMM's own exits, as Chrome trace-event JSON, which ui.perfetto.dev and chrome://tracing
//! open. Each guest process is a track (pid = tid = its pid) holding a "running" slice for each
//! time it had the CPU and, nested inside, a slice per system call, with instants for its
//! start, exec, exit, signals and faults. Process 0 holds two tracks: the kernel (tid 0: a slice
//! per system call, timer interrupt, page fault and idle period, and an instant per context
//! switch) and the VMM (tid 1: a slice per VM exit that reached it, on the guest's clock:
//! guest_clock.rs). Slices on a track always nest: a switch closes what its task had open (a
//! blocking call ends its slice there and starts a new one when it runs again), and an end with
//! nothing open is dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use crate::exit_stats::ExitKind;
use crate::guest_clock::GuestClock;
use crate::kernel_lane::{Close, KernelLane, Output, Slice};
use crate::trap_names::vector_name;

use abi::trace::{self, Header, Record, RECORD_BYTES};
use serde_json::{json, Value};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// More records than this are counted, not kept: a long run's trace stays small enough to open.
pub const MAX_RECORDS: usize = 2_000_000;
/// The same for the VMM's exits.
pub const MAX_EXITS: usize = 1_000_000;

/// The kernel's track and the VMM's, in process 0.
pub const KERNEL_TID: u32 = 0;
pub const VMM_TID: u32 = 1;

/// The records as the guest handed them over, filled by the I/O bus.
pub struct TraceSink {
    memory: GuestMemoryMmap,
    inner: Mutex<Sink>,
    /// The host's zero for the guest clock's pairs.
    base: Instant,
    /// Whether the VM exits are wanted (a trace or a timeline; `--stats` alone reads only the
    /// kernel's records and has its own exit table).
    pub with_exits: bool,
}

#[derive(Default)]
struct Sink {
    /// The buffer's guest-physical address, once the kernel has said it (and it checked out).
    buffer: Option<u64>,
    /// The records, their TSC stamps already turned into the guest's nanoseconds and the
    /// short ones completed (`trace::Filler`).
    records: Vec<Record>,
    filler: trace::Filler,
    dropped: u64,
    /// What was wrong with the buffer, if anything: said in the trace, not silently empty.
    problem: Option<String>,
    clock: Option<GuestClock>,
    /// The VM exits that reached the VMM: what, when KVM_RUN returned with it, when the VMM
    /// entered the guest again.
    exits: Vec<(ExitKind, Instant, Instant)>,
    exits_dropped: u64,
    /// The exit being handled now.
    pending: Option<(ExitKind, Instant)>,
}

/// One VM exit on the guest's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct VmmSpan {
    pub name: String,
    pub begin_ns: u64,
    pub end_ns: u64,
}

impl TraceSink {
    pub fn new(memory: GuestMemoryMmap, with_exits: bool) -> TraceSink {
        TraceSink {
            memory,
            inner: Mutex::new(Sink::default()),
            base: Instant::now(),
            with_exits,
        }
    }

    /// KVM_RUN came back with `kind` (the vCPU loop calls this and `entering`).
    pub fn exited(&self, kind: ExitKind) {
        self.lock().pending = Some((kind, Instant::now()));
    }

    /// The loop ended: so did the last exit's handling.
    pub fn finish(&self) {
        self.entering();
    }

    /// Just before KVM_RUN: the exit being handled ends here.
    pub fn entering(&self) {
        let mut s = self.lock();
        if let Some((kind, since)) = s.pending.take() {
            if s.exits.len() < MAX_EXITS {
                s.exits.push((kind, since, Instant::now()));
            } else {
                s.exits_dropped += 1;
            }
        }
    }

    /// A clock pair: the kernel stamped the header just before the port write being handled.
    fn sample_clock(&self, s: &mut Sink) {
        let at = Instant::now();
        let Some(addr) = s.buffer else { return };
        if let (Ok(h), Some(c)) = (self.header(addr), s.clock.as_mut()) {
            c.sample(h.stamp_tsc, at);
        }
    }

    /// The guest is powering off (the exit port): its last clock stamp.
    pub fn power_off(&self) {
        let mut s = self.lock();
        self.sample_clock(&mut s);
    }

    /// The VM exits on the guest's clock (none before the kernel's first clock pair).
    pub fn vmm_spans(&self) -> Vec<VmmSpan> {
        let s = self.lock();
        let Some(clock) = &s.clock else {
            return Vec::new();
        };
        s.exits
            .iter()
            .filter_map(|(kind, a, b)| {
                Some(VmmSpan {
                    name: kind.name(),
                    begin_ns: clock.guest_ns(*a)?,
                    end_ns: clock.guest_ns(*b)?,
                })
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sink> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn header(&self, addr: u64) -> Result<Header, String> {
        let mut b = [0u8; RECORD_BYTES];
        self.memory
            .read_slice(&mut b, GuestAddress(addr))
            .map_err(|e| format!("the buffer at {addr:#x} is not in guest RAM: {e}"))?;
        let word = |i: usize| u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap_or([0; 8]));
        let h = Header {
            magic: word(0),
            head: word(1),
            capacity: word(2),
            boot_tsc: word(3),
            mult: word(4),
            stamp_tsc: word(5),
        };
        if h.magic != trace::MAGIC || h.capacity != trace::CAPACITY as u64 {
            return Err(format!("no trace buffer header at {addr:#x}"));
        }
        Ok(h)
    }

    /// A 4-byte write to `TRACE_BUFFER`: where the kernel's buffer is.
    pub fn set_buffer(&self, data: &[u8]) {
        let mut s = self.lock();
        let Ok(addr) = <[u8; 4]>::try_from(data).map(u32::from_le_bytes) else {
            s.problem = Some(format!("a {}-byte write of the buffer address", data.len()));
            return;
        };
        match self.header(addr as u64) {
            Ok(h) => {
                s.buffer = Some(addr as u64);
                s.clock = Some(GuestClock::new(h.boot_tsc, h.mult, self.base));
                self.sample_clock(&mut s);
            }
            Err(e) => s.problem = Some(e),
        }
    }

    /// A write to `TRACE_FLUSH`: the buffer is full. The kernel starts again at 0 after it.
    pub fn flush(&self) {
        let mut s = self.lock();
        self.sample_clock(&mut s);
        self.drain_locked(&mut s);
    }

    /// The end of the run: takes the records the buffer still holds.
    pub fn drain(&self) {
        let mut s = self.lock();
        self.drain_locked(&mut s);
    }

    fn drain_locked(&self, s: &mut Sink) {
        let Some(addr) = s.buffer else { return };
        let head = match self.header(addr) {
            Ok(h) => (h.head / RECORD_BYTES as u64).min(trace::CAPACITY as u64) as usize,
            Err(e) => {
                s.problem = Some(e);
                return;
            }
        };
        let mut bytes = vec![0u8; head * RECORD_BYTES];
        if let Err(e) = self
            .memory
            .read_slice(&mut bytes, GuestAddress(addr + RECORD_BYTES as u64))
        {
            s.problem = Some(format!("cannot read the trace records: {e}"));
            return;
        }
        for chunk in bytes.chunks_exact(RECORD_BYTES) {
            if s.records.len() >= MAX_RECORDS {
                s.dropped += 1;
            } else if let (Some(mut r), Some(c)) = (Record::from_bytes(chunk), &s.clock) {
                r.ns = c.ns(r.ns);
                s.filler.fill(&mut r);
                s.records.push(r);
            }
        }
    }

    pub fn records(&self) -> Vec<Record> {
        self.lock().records.clone()
    }

    /// What the size limits left out, said once at the end (None: nothing was).
    pub fn limit_note(&self) -> Option<String> {
        let s = self.lock();
        (s.dropped > 0 || s.exits_dropped > 0).then(|| {
            format!(
                "the trace kept the first {MAX_RECORDS} kernel records and {MAX_EXITS} VM exits; \
                 {} more records and {} more exits were counted, not kept \
                 (otherData.dropped_records, dropped_vmm_exits)",
                s.dropped, s.exits_dropped
            )
        })
    }

    /// Records not kept (more than `MAX_RECORDS`).
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    pub fn to_json(&self) -> Value {
        let spans = self.vmm_spans();
        let s = self.lock();
        let mut v = chrome_trace(&s.records, s.dropped);
        if let Some(events) = v["traceEvents"].as_array_mut() {
            events.extend(vmm_track(&spans));
        }
        v["otherData"]["vmm_exits"] = json!(spans.len());
        v["otherData"]["dropped_vmm_exits"] = json!(s.exits_dropped);
        if let Some(c) = &s.clock {
            v["otherData"]["clock"] = c.summary();
        }
        if let Some(p) = &s.problem {
            v["otherData"]["problem"] = json!(p);
        }
        v
    }
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn name_of(words: [u64; 2]) -> String {
    let b = trace::unpack_name(words);
    let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// An open slice on a process's track: its name, for the matching "E".
struct Open {
    name: String,
    /// What opened it: a system call's number, or the switch to the task.
    what: Opened,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Opened {
    Running,
    Syscall(u64),
}

/// The slices open on each track, and the events made so far.
#[derive(Default)]
struct Tracks {
    events: Vec<Value>,
    /// By (pid, tid): a process's track is (pid, pid).
    open: HashMap<(u32, u32), Vec<Open>>,
    /// The kernel's track, (0, KERNEL_TID): the timeline's kernel lane follows the same
    /// machine, so the two agree. Each open slice keeps its name.
    kernel: KernelLane<String>,
}

impl Tracks {
    fn begin(
        &mut self,
        track: (u32, u32),
        name: String,
        what: Opened,
        ns: u64,
        cat: &str,
        args: Value,
    ) {
        self.events
            .push(json!({"ph": "B", "name": name, "cat": cat, "pid": track.0,
            "tid": track.1, "ts": us(ns), "args": args}));
        self.open
            .entry(track)
            .or_default()
            .push(Open { name, what });
    }

    /// Ends the innermost slice on `track` if `what` opened it (else the end is dropped).
    fn end(&mut self, track: (u32, u32), what: Opened, ns: u64, args: Value) {
        let stack = self.open.entry(track).or_default();
        if stack.last().is_some_and(|o| o.what == what) {
            let o = stack.pop().expect("checked");
            self.events
                .push(json!({"ph": "E", "name": o.name, "pid": track.0,
                "tid": track.1, "ts": us(ns), "args": args}));
        }
    }

    /// Ends every slice open on `track`, innermost first.
    fn close_all(&mut self, track: (u32, u32), ns: u64) {
        for o in self
            .open
            .remove(&track)
            .unwrap_or_default()
            .into_iter()
            .rev()
        {
            self.events
                .push(json!({"ph": "E", "name": o.name, "pid": track.0,
                "tid": track.1, "ts": us(ns)}));
        }
    }

    fn instant(&mut self, track: (u32, u32), name: String, ns: u64, cat: &str, args: Value) {
        self.events
            .push(json!({"ph": "i", "s": "t", "name": name, "cat": cat,
            "pid": track.0, "tid": track.1, "ts": us(ns), "args": args}));
    }
}

const KERNEL: (u32, u32) = (0, KERNEL_TID);

/// The kernel's slices as "B" and "E" events on its track.
struct KernelTrack<'a>(&'a mut Vec<Value>);

impl Output for KernelTrack<'_> {
    type Open = String;

    fn open(&mut self, slice: Slice, r: &Record, ns: u64) -> String {
        let (name, cat, args) = match slice {
            Slice::Syscall(nr) => {
                let mut args = call_args(r);
                args["pid"] = json!(r.pid);
                (abi::syscall::name(nr as usize).to_string(), "syscall", args)
            }
            Slice::Tick => {
                let from = if r.a[0] != 0 { "user" } else { "idle" };
                (
                    "timer".into(),
                    "interrupt",
                    json!({"from": from, "pid": r.pid}),
                )
            }
            Slice::PageFault => (
                "page fault".into(),
                "fault",
                json!({"pid": r.pid, "address": format!("{:#x}", r.a[0]),
                    "error": r.a[1], "rip": format!("{:#x}", r.a[2])}),
            ),
            Slice::Interrupt(v) => (
                vector_name(v),
                "interrupt",
                json!({"vector": v, "pid": r.pid}),
            ),
            Slice::Idle => ("idle".into(), "idle", json!({})),
            Slice::Exception => (
                format!("fault: {}", vector_name(r.a[0])),
                "fault",
                json!({"pid": r.pid}),
            ),
        };
        self.0
            .push(json!({"ph": "B", "name": name, "cat": cat, "pid": KERNEL.0,
            "tid": KERNEL.1, "ts": us(ns), "args": args}));
        name
    }

    fn close(&mut self, _: Slice, name: String, why: Close<'_>, ns: u64) {
        let mut e = json!({"ph": "E", "name": name, "pid": KERNEL.0, "tid": KERNEL.1,
            "ts": us(ns)});
        // A slice cut short by a switch or idle did not end of itself: no args say how.
        if let Close::By(r) = why {
            e["args"] = end_args(r);
        }
        self.0.push(e);
    }
}

/// A system call's number and first arguments, from its ENTER.
fn call_args(r: &Record) -> Value {
    json!({"nr": r.a[0], "args": [r.a[1], r.a[2], r.a[3]]})
}

/// What the record that ended a slice says about how it went (`{}`: nothing).
fn end_args(r: &Record) -> Value {
    match r.kind {
        trace::SYSCALL_EXIT => {
            let how = match r.a[2] {
                trace::BLOCKED => "blocked",
                trace::NO_RETURN => "no return",
                _ => "returned",
            };
            json!({"result": r.a[1] as i64, "how": how})
        }
        trace::PAGE_FAULT_END => {
            let outcome = match r.a[0] {
                trace::FAULT_RESOLVED => "mapped",
                trace::FAULT_SEGV => "SIGSEGV",
                _ => "out of memory",
            };
            json!({"outcome": outcome})
        }
        _ => json!({}),
    }
}

/// "exit 3", "killed by SIGSEGV": a Linux wait status in words.
fn ended(wait_status: u64) -> String {
    let sig = (wait_status & 0x7f) as u32;
    if sig == 0 {
        format!("exit {}", (wait_status >> 8) & 0xff)
    } else {
        format!("killed by {}", abi::signal::name(sig))
    }
}

/// The trace-event document for `records`, in the order the kernel sent them.
pub fn chrome_trace(records: &[Record], dropped: u64) -> Value {
    let mut t = Tracks::default();
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    let mut last_ns = 0;
    for r in records {
        // Timestamps never go back on a track, even if a record was stamped a little early.
        let ns = r.ns.max(last_ns);
        last_ns = ns;
        let me = (r.pid, r.pid);
        // The task's own track first, then the kernel's, then the instants and the next
        // task's "running": the order within one timestamp the trace has always had.
        match r.kind {
            trace::SYSCALL_ENTER => {
                let nr = r.a[0];
                // A task is in one call at a time, and so is the CPU: a call whose end was not
                // recorded (the task was killed in it) ends where the next begins.
                if let Some(Opened::Syscall(n)) =
                    t.open.get(&me).and_then(|s| s.last()).map(|o| o.what)
                {
                    t.end(me, Opened::Syscall(n), ns, json!({}));
                }
                let name = abi::syscall::name(nr as usize).to_string();
                t.begin(me, name, Opened::Syscall(nr), ns, "syscall", call_args(r));
            }
            trace::SYSCALL_EXIT => t.end(me, Opened::Syscall(r.a[0]), ns, end_args(r)),
            trace::SWITCH => t.close_all(me, ns),
            _ => {}
        }
        t.kernel.step(r, ns, &mut KernelTrack(&mut t.events));
        match r.kind {
            trace::SWITCH => {
                let (from, to) = (r.pid, r.a[0] as u32);
                let why = trace::WHY_NAMES
                    .get(r.a[1] as usize)
                    .copied()
                    .unwrap_or("other");
                let to_name = name_of([r.a[2], r.a[3]]);
                names.insert(to, to_name.clone());
                t.instant(
                    KERNEL,
                    format!("switch ({why})"),
                    ns,
                    "sched",
                    json!({"from": from, "to": to, "to_name": to_name, "why": why}),
                );
                t.begin(
                    (to, to),
                    "running".into(),
                    Opened::Running,
                    ns,
                    "sched",
                    json!({"name": to_name, "why": why}),
                );
            }
            trace::SIGNAL => {
                let sig = r.a[0] as u32;
                t.instant(
                    me,
                    format!("signal {}", abi::signal::name(sig)),
                    ns,
                    "signal",
                    json!({"signal": sig}),
                );
            }
            trace::FAULT => {
                t.instant(
                    me,
                    format!("fault: {}", vector_name(r.a[0])),
                    ns,
                    "fault",
                    json!({"vector": r.a[0], "rip": format!("{:#x}", r.a[1]),
                        "address": format!("{:#x}", r.a[2]),
                        "signal": abi::signal::name(r.a[3] as u32)}),
                );
            }
            trace::START => {
                let child = r.a[0];
                t.instant(
                    me,
                    format!("start {child}"),
                    ns,
                    "process",
                    json!({"child": child, "clone_flags": format!("{:#x}", r.a[1])}),
                );
            }
            trace::EXEC => {
                let name = name_of([r.a[0], r.a[1]]);
                names.insert(r.pid, name.clone());
                t.instant(
                    me,
                    format!("exec {name}"),
                    ns,
                    "process",
                    json!({"name": name}),
                );
            }
            trace::EXIT => {
                t.instant(
                    me,
                    ended(r.a[0]),
                    ns,
                    "process",
                    json!({"wait_status": r.a[0]}),
                );
            }
            _ => {}
        }
    }
    t.kernel.finish(last_ns, &mut KernelTrack(&mut t.events));
    let mut tracks: Vec<(u32, u32)> = t.open.keys().copied().collect();
    tracks.sort_unstable();
    for track in tracks {
        t.close_all(track, last_ns);
    }
    let mut meta = vec![
        json!({"ph": "M", "name": "process_name", "pid": 0, "tid": KERNEL_TID,
        "args": {"name": "kernel and VMM"}}),
        json!({"ph": "M", "name": "thread_name", "pid": 0, "tid": KERNEL_TID,
        "args": {"name": "kernel"}}),
        json!({"ph": "M", "name": "thread_name", "pid": 0, "tid": VMM_TID,
        "args": {"name": "VMM (VM exits)"}}),
    ];
    for (pid, name) in &names {
        meta.push(
            json!({"ph": "M", "name": "process_name", "pid": pid, "tid": pid,
            "args": {"name": format!("{pid} {name}")}}),
        );
    }
    meta.extend(t.events);
    json!({
        "traceEvents": meta,
        "displayTimeUnit": "ns",
        "otherData": {
            "source": "lde vmm --trace (kernel trace=events)",
            "records": records.len(),
            "dropped_records": dropped,
        }
    })
}

/// The VMM's track: a slice per exit, in order (they never overlap: one vCPU).
fn vmm_track(spans: &[VmmSpan]) -> Vec<Value> {
    let mut out = Vec::with_capacity(2 * spans.len());
    let mut last = 0;
    for s in spans {
        let b = s.begin_ns.max(last);
        let e = s.end_ns.max(b);
        last = e;
        out.push(
            json!({"ph": "B", "name": s.name, "cat": "vmexit", "pid": 0, "tid": VMM_TID,
            "ts": us(b)}),
        );
        out.push(json!({"ph": "E", "name": s.name, "pid": 0, "tid": VMM_TID, "ts": us(e)}));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(ns: u64, kind: u32, pid: u32, a: [u64; 4]) -> Record {
        Record { ns, kind, pid, a }
    }

    #[test]
    fn a_switch_inside_a_call_closes_it_and_slices_nest() {
        let n = trace::pack_name(b"a");
        let m = trace::pack_name(b"b");
        let yield_nr = abi::syscall::nr::SCHED_YIELD as u64;
        let records = [
            rec(1000, trace::SWITCH, 0, [1, 0, n[0], n[1]]),
            rec(2000, trace::SYSCALL_ENTER, 1, [yield_nr, 0, 0, 0]),
            rec(3000, trace::SWITCH, 1, [2, 1, m[0], m[1]]),
            rec(3100, trace::SYSCALL_EXIT, 1, [yield_nr, 0, 0, 0]),
        ];
        let v = chrome_trace(&records, 0);
        let ev = v["traceEvents"].as_array().unwrap();
        let seq: Vec<(String, String, u64)> = ev
            .iter()
            .filter(|e| e["ph"] != "M")
            .map(|e| {
                (
                    e["ph"].as_str().unwrap().to_string(),
                    e["name"].as_str().unwrap().to_string(),
                    e["pid"].as_u64().unwrap(),
                )
            })
            .collect();
        let s = |ph: &str, name: &str, pid| (ph.to_string(), name.to_string(), pid);
        assert_eq!(
            seq,
            vec![
                s("i", "switch (start)", 0),
                s("B", "running", 1),
                s("B", "sched_yield", 1),
                s("B", "sched_yield", 0),
                s("E", "sched_yield", 1),
                s("E", "running", 1),
                s("E", "sched_yield", 0),
                s("i", "switch (yield)", 0),
                s("B", "running", 2),
                s("E", "running", 2),
            ]
        );
    }

    #[test]
    fn ticks_faults_and_idle_are_kernel_slices_and_a_blocked_call_ends_at_idle() {
        let n = trace::pack_name(b"a");
        let read_nr = abi::syscall::nr::READ as u64;
        let records = [
            rec(1000, trace::SWITCH, 0, [1, 0, n[0], n[1]]),
            rec(1100, trace::TICK_BEGIN, 1, [1, 0, 0, 0]),
            rec(1200, trace::TICK_END, 1, [0; 4]),
            rec(1300, trace::PAGE_FAULT_BEGIN, 1, [0x1000, 6, 0x40_0000, 0]),
            rec(
                1400,
                trace::PAGE_FAULT_END,
                1,
                [trace::FAULT_RESOLVED, 0, 0, 0],
            ),
            rec(1500, trace::SYSCALL_ENTER, 1, [read_nr, 0, 0, 0]),
            rec(1600, trace::IDLE_BEGIN, 1, [0; 4]),
            rec(1700, trace::TICK_BEGIN, 1, [0, 0, 0, 0]),
            rec(1800, trace::TICK_END, 1, [0; 4]),
            rec(1900, trace::IDLE_END, 1, [0; 4]),
            rec(2000, trace::EXIT, 1, [0x0b, 0, 0, 0]),
        ];
        let v = chrome_trace(&records, 0);
        let kernel: Vec<(String, String)> = v["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["ph"] != "M" && e["pid"] == 0 && e["tid"] == KERNEL_TID)
            .map(|e| {
                (
                    e["ph"].as_str().unwrap().to_string(),
                    e["name"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let s = |ph: &str, name: &str| (ph.to_string(), name.to_string());
        assert_eq!(
            kernel,
            vec![
                s("i", "switch (start)"),
                s("B", "timer"),
                s("E", "timer"),
                s("B", "page fault"),
                s("E", "page fault"),
                s("B", "read"),
                s("E", "read"),
                s("B", "idle"),
                s("B", "timer"),
                s("E", "timer"),
                s("E", "idle"),
            ]
        );
        let exit = v["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["cat"] == "process")
            .unwrap();
        assert_eq!(exit["name"], "killed by SIGSEGV");
    }
}
