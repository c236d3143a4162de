//! `--stats`, KVM's half: the vCPU's binary statistics (KVM_GET_STATS_FD, Linux 5.14 and later).
//! With the in-kernel irqchip, HLT and interrupt exits never reach the VMM; KVM counts them, and
//! this reads its counters at the start and the end of the run. kvm-ioctls has no wrapper for
//! the ioctl, so it is issued here; the file it returns is read with `pread` as the kernel's
//! documentation lays it out (a header, descriptors with names, then the values).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::FromRawFd;
use std::os::unix::fs::FileExt;

use kvm_bindings::{KVMIO, KVM_STATS_TYPE_CUMULATIVE, KVM_STATS_TYPE_INSTANT, KVM_STATS_TYPE_MASK};
use kvm_ioctls::VcpuFd;
use serde_json::{json, Value};
use vmm_sys_util::ioctl::ioctl;
use vmm_sys_util::ioctl_io_nr;

ioctl_io_nr!(KVM_GET_STATS_FD, KVMIO, 0xce);

/// The counters worth a line, in the order printed.
pub const SHOWN: &[&str] = &[
    "exits",
    "io_exits",
    "mmio_exits",
    "halt_exits",
    "irq_exits",
    "irq_window_exits",
    "signal_exits",
    "halt_wakeup",
    "halt_wait_ns",
    "irq_injections",
    "pf_taken",
    "insn_emulation",
];

/// One scalar counter: its name and where its value is in the file.
struct Desc {
    name: String,
    offset: u64,
}

pub struct KvmStats {
    file: File,
    id: String,
    descs: Vec<Desc>,
    /// The values when the run began.
    start: BTreeMap<String, u64>,
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    b.get(i..i + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

impl KvmStats {
    /// Opens the vCPU's statistics and reads the starting values; the error says why not.
    pub fn open(vcpu: &VcpuFd) -> Result<KvmStats, String> {
        // SAFETY: KVM_GET_STATS_FD takes no argument and returns a new descriptor or -1; the
        // vCPU descriptor is valid for the call.
        let fd = unsafe { ioctl(vcpu, KVM_GET_STATS_FD()) };
        if fd < 0 {
            return Err(format!(
                "KVM_GET_STATS_FD: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: `fd` is a new descriptor that nothing else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        let read = |len: usize, at: u64| -> Result<Vec<u8>, String> {
            let mut b = vec![0u8; len];
            file.read_exact_at(&mut b, at)
                .map_err(|e| format!("reading KVM's statistics: {e}"))?;
            Ok(b)
        };
        // struct kvm_stats_header: flags, name_size, num_desc, id_offset, desc_offset,
        // data_offset (u32 each).
        let h = read(24, 0)?;
        let (name_size, num_desc) = (u32_at(&h, 4) as usize, u32_at(&h, 8) as usize);
        let (id_off, desc_off, data_off) = (u32_at(&h, 12), u32_at(&h, 16), u32_at(&h, 20));
        if name_size == 0 || num_desc > 10_000 {
            return Err(format!(
                "KVM's statistics header looks wrong ({num_desc} descriptors)"
            ));
        }
        let id = read(name_size, id_off as u64)?;
        let id = String::from_utf8_lossy(id.split(|&c| c == 0).next().unwrap_or(&[])).into_owned();
        // struct kvm_stats_desc: flags u32, exponent i16, size u16, offset u32, bucket_size
        // u32, then the name (name_size bytes).
        let each = 16 + name_size;
        let all = read(each * num_desc, desc_off as u64)?;
        let descs = all
            .chunks_exact(each)
            .filter_map(|d| {
                let kind = u32_at(d, 0) & KVM_STATS_TYPE_MASK;
                let size = u16::from_le_bytes([d[6], d[7]]);
                let scalar = kind == KVM_STATS_TYPE_CUMULATIVE || kind == KVM_STATS_TYPE_INSTANT;
                (scalar && size == 1).then(|| Desc {
                    name: String::from_utf8_lossy(d[16..].split(|&c| c == 0).next().unwrap_or(&[]))
                        .into_owned(),
                    offset: data_off as u64 + u32_at(d, 8) as u64,
                })
            })
            .collect();
        let mut s = KvmStats {
            file,
            id,
            descs,
            start: BTreeMap::new(),
        };
        s.start = s.values();
        Ok(s)
    }

    fn values(&self) -> BTreeMap<String, u64> {
        self.descs
            .iter()
            .filter_map(|d| {
                let mut b = [0u8; 8];
                self.file.read_exact_at(&mut b, d.offset).ok()?;
                Some((d.name.clone(), u64::from_le_bytes(b)))
            })
            .collect()
    }

    /// How much each counter grew during the run.
    pub fn during_run(&self) -> BTreeMap<String, u64> {
        self.values()
            .into_iter()
            .map(|(k, v)| {
                let before = self.start.get(&k).copied().unwrap_or(0);
                (k, v.saturating_sub(before))
            })
            .collect()
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The lines `--stats` prints for KVM's counters, or why there are none.
pub fn report(stats: &Result<KvmStats, String>) -> String {
    match stats {
        Ok(s) => {
            let d = s.during_run();
            let shown: Vec<String> = SHOWN
                .iter()
                .filter_map(|k| Some(format!("{k} {}", d.get(*k)?)))
                .collect();
            format!(
                "vmm stats: in KVM ({}, KVM_GET_STATS_FD): {}\n",
                s.id(),
                shown.join(", ")
            )
        }
        Err(e) => format!(
            "vmm stats: in KVM: not available ({e}): HLT and interrupt exits are not counted\n"
        ),
    }
}

pub fn json(stats: &Result<KvmStats, String>) -> Value {
    match stats {
        Ok(s) => json!({"id": s.id(), "during_run": s.during_run()}),
        Err(e) => json!({"unavailable": e}),
    }
}
