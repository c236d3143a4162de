//! args: prints argc, each argv[i], the environment and the auxiliary vector it was given, and
//! exits with argc. Tests the System V initial stack the loader lays out.
#![no_std]
#![no_main]

use lde_user::{Args, println};

lde_user::entry!(main);

fn main(args: Args) -> i32 {
    println!("argc={}", args.len());
    for (i, arg) in args.iter().enumerate() {
        println!("argv[{i}]={arg}");
    }
    if !args.argv_null_terminated() {
        println!("argv[argc] is not NULL!");
        return 255;
    }
    println!("envc={}", args.env().count());
    for (key, value) in args.auxv() {
        // The types a static program (musl) looks at: AT_PHDR 3, AT_PHENT 4, AT_PHNUM 5,
        // AT_PAGESZ 6, AT_ENTRY 9, AT_RANDOM 25.
        if matches!(key, 3..=6 | 9 | 25) {
            println!("auxv[{key}]={value:#x}");
        }
    }
    args.len() as i32
}
