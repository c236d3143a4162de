#![no_std]
#![no_main]
lde_user::entry!(main);
fn main(_args: lde_user::Args) -> i32 {
    0
}
