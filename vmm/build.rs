use std::path::PathBuf;
fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("kernel.elf"), b"").unwrap();
    std::fs::write(out.join("default.cpio"), b"").unwrap();
}
