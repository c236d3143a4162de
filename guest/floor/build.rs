// Link the floor with its own script: the boot trampoline at its physical address, the
// ring-0 half in the higher half, the ring-3 half (all the Rust code) on user pages at 2 MiB.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rustc-link-arg-bins=-T{dir}/linker.ld");
    println!("cargo:rustc-link-arg-bins=--no-pie");
    println!("cargo:rerun-if-changed=linker.ld");
}
