//! `--trace FILE`: the kernel's event records (abi::trace: a buffer in guest memory the kernel
//! hands over when full, and the VMM reads at the end, while it runs with `trace=events`) as Chrome trace-event JSON, which ui.perfetto.dev and
//! chrome://tracing open. Each guest process is a track (pid = tid = its pid) holding a
//! "running" slice for each time it had the CPU and, nested inside, a slice per system call;
//! track 0 ("kernel") holds an instant event per context switch. Slices on a track always nest:
//! a switch closes what its task had open (a blocking call ends its slice there and starts a new
//! one when it runs again), and an end with nothing open is dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use abi::trace::{self, Header, Record, RECORD_BYTES};
use serde_json::{json, Value};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// More records than this are counted, not kept: a long run's trace stays small enough to open.
pub const MAX_RECORDS: usize = 2_000_000;

/// The records as the guest handed them over, filled by the I/O bus.
pub struct TraceSink {
    memory: GuestMemoryMmap,
    inner: Mutex<Sink>,
}

#[derive(Default)]
struct Sink {
    /// The buffer's guest-physical address, once the kernel has said it (and it checked out).
    buffer: Option<u64>,
    records: Vec<Record>,
    dropped: u64,
    /// What was wrong with the buffer, if anything: said in the trace, not silently empty.
    problem: Option<String>,
}

impl TraceSink {
    pub fn new(memory: GuestMemoryMmap) -> TraceSink {
        TraceSink {
            memory,
            inner: Mutex::new(Sink::default()),
        }
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
            _reserved: [0; 3],
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
            Ok(_) => s.buffer = Some(addr as u64),
            Err(e) => s.problem = Some(e),
        }
    }

    /// A write to `TRACE_FLUSH` (the buffer is full), and the end of the run: takes the
    /// records the buffer holds. The kernel starts again at 0 after a flush.
    pub fn drain(&self) {
        let mut s = self.lock();
        let Some(addr) = s.buffer else { return };
        let head = match self.header(addr) {
            Ok(h) => h.head.min(trace::CAPACITY as u64) as usize,
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
            } else if let Some(r) = Record::from_bytes(chunk) {
                s.records.push(r);
            }
        }
    }

    pub fn records(&self) -> Vec<Record> {
        self.lock().records.clone()
    }

    pub fn to_json(&self) -> Value {
        let s = self.lock();
        let mut v = chrome_trace(&s.records, s.dropped);
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

/// An open slice on a track: its name, for the matching "E".
struct Open {
    name: String,
    /// A system call's number (None for "running").
    syscall: Option<u64>,
}

/// The trace-event document for `records`, in the order the kernel sent them.
pub fn chrome_trace(records: &[Record], dropped: u64) -> Value {
    let mut events = Vec::new();
    let mut open: HashMap<u32, Vec<Open>> = HashMap::new();
    let mut names: BTreeMap<u32, String> = BTreeMap::new();
    let mut last_ns = 0;
    let end = |events: &mut Vec<Value>, pid: u32, o: Open, ns: u64| {
        events.push(json!({"ph": "E", "name": o.name, "pid": pid, "tid": pid, "ts": us(ns)}));
    };
    for r in records {
        // Timestamps never go back on a track, even if a record was stamped a little early.
        let ns = r.ns.max(last_ns);
        last_ns = ns;
        match r.kind {
            trace::SYSCALL_ENTER => {
                let nr = r.a[0];
                let name = abi::syscall::name(nr as usize).to_string();
                events.push(
                    json!({"ph": "B", "name": name, "cat": "syscall", "pid": r.pid,
                    "tid": r.pid, "ts": us(ns),
                    "args": {"nr": nr, "args": [r.a[1], r.a[2], r.a[3]]}}),
                );
                open.entry(r.pid).or_default().push(Open {
                    name,
                    syscall: Some(nr),
                });
            }
            trace::SYSCALL_EXIT => {
                let stack = open.entry(r.pid).or_default();
                if stack.last().is_some_and(|o| o.syscall == Some(r.a[0])) {
                    let o = stack.pop().expect("checked");
                    let how = match r.a[2] {
                        trace::BLOCKED => "blocked",
                        trace::NO_RETURN => "no return",
                        _ => "returned",
                    };
                    events.push(
                        json!({"ph": "E", "name": o.name, "pid": r.pid, "tid": r.pid,
                        "ts": us(ns), "args": {"result": r.a[1] as i64, "how": how}}),
                    );
                }
            }
            trace::SWITCH => {
                let (from, to) = (r.pid, r.a[0] as u32);
                let why = trace::WHY_NAMES
                    .get(r.a[1] as usize)
                    .copied()
                    .unwrap_or("other");
                for o in open.remove(&from).unwrap_or_default().into_iter().rev() {
                    end(&mut events, from, o, ns);
                }
                let to_name = name_of([r.a[2], r.a[3]]);
                names.insert(to, to_name.clone());
                events.push(
                    json!({"ph": "i", "s": "t", "name": format!("switch ({why})"),
                    "cat": "sched", "pid": 0, "tid": 0, "ts": us(ns),
                    "args": {"from": from, "to": to, "to_name": to_name, "why": why}}),
                );
                events.push(
                    json!({"ph": "B", "name": "running", "cat": "sched", "pid": to,
                    "tid": to, "ts": us(ns), "args": {"name": to_name, "why": why}}),
                );
                open.entry(to).or_default().push(Open {
                    name: "running".into(),
                    syscall: None,
                });
            }
            trace::SIGNAL => {
                let sig = r.a[0] as u32;
                events.push(json!({"ph": "i", "s": "t",
                    "name": format!("signal {}", abi::signal::name(sig)), "cat": "signal",
                    "pid": r.pid, "tid": r.pid, "ts": us(ns), "args": {"signal": sig}}));
            }
            trace::FAULT => {
                let name = match r.a[0] {
                    0 => "divide error".to_string(),
                    6 => "invalid opcode".to_string(),
                    13 => "general protection".to_string(),
                    14 => "page fault".to_string(),
                    v => format!("exception {v}"),
                };
                events.push(
                    json!({"ph": "i", "s": "t", "name": format!("fault: {name}"),
                    "cat": "fault", "pid": r.pid, "tid": r.pid, "ts": us(ns),
                    "args": {"vector": r.a[0], "rip": format!("{:#x}", r.a[1]),
                        "address": format!("{:#x}", r.a[2]),
                        "signal": abi::signal::name(r.a[3] as u32)}}),
                );
            }
            _ => {}
        }
    }
    let mut pids: Vec<u32> = open.keys().copied().collect();
    pids.sort_unstable();
    for pid in pids {
        for o in open.remove(&pid).unwrap_or_default().into_iter().rev() {
            end(&mut events, pid, o, last_ns);
        }
    }
    let mut meta = vec![
        json!({"ph": "M", "name": "process_name", "pid": 0, "tid": 0,
        "args": {"name": "kernel"}}),
    ];
    for (pid, name) in &names {
        meta.push(
            json!({"ph": "M", "name": "process_name", "pid": pid, "tid": pid,
            "args": {"name": format!("{pid} {name}")}}),
        );
    }
    meta.extend(events);
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
                s("E", "sched_yield", 1),
                s("E", "running", 1),
                s("i", "switch (yield)", 0),
                s("B", "running", 2),
                s("E", "running", 2),
            ]
        );
    }
}
