// Link every program as a static, non-PIE executable at 0x400000 (the traditional x86-64 base),
// far below the kernel's higher half. relocation-model=static (guest/.cargo/config.toml) already
// makes rustc link a plain static executable (ELF type EXEC); we only pick the address.
fn main() {
    println!("cargo:rustc-link-arg-bins=--no-pie");
    println!("cargo:rustc-link-arg-bins=--image-base=0x400000");
    println!("cargo:rerun-if-changed=build.rs");
}
