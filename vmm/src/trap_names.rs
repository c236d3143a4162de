//! What the guest's traps are called in the VMM's reports (`--trace`, `--timeline`,
//! `--stats`), by vector: the exceptions the kernel reports, the timer, the device
//! interrupts (abi::trace's vectors).

use abi::trace;

const TIMER: u64 = trace::TIMER_VECTOR as u64;
const CONSOLE: u64 = trace::CONSOLE_VECTOR as u64;
const SPURIOUS: u64 = trace::SPURIOUS_VECTOR as u64;

/// "page fault", "timer interrupt", "console interrupt", "exception 17".
pub fn vector_name(vector: u64) -> String {
    match vector {
        0 => "divide error".into(),
        3 => "breakpoint".into(),
        6 => "invalid opcode".into(),
        13 => "general protection".into(),
        14 => "page fault".into(),
        TIMER => "timer interrupt".into(),
        CONSOLE => "console interrupt".into(),
        SPURIOUS => "spurious interrupt".into(),
        v if v < 32 => format!("exception {v}"),
        v => format!("interrupt {v}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_have_their_names() {
        assert_eq!(vector_name(14), "page fault");
        assert_eq!(vector_name(32), "timer interrupt");
        assert_eq!(vector_name(36), "console interrupt");
        assert_eq!(vector_name(17), "exception 17");
        assert_eq!(vector_name(40), "interrupt 40");
    }
}
