//! The `vmm` command: `vmm [OPTIONS] [KERNEL]` boots a PVH kernel (by default the one embedded
//! at build time) and exits with the status the guest wrote to port 0xf4, or with one of the
//! VMM's own statuses (docs/conventions.md). Every error is one line `vmm: error: ...`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use vmm::error::{status, ImageError};
use vmm::initrd::{add_files, read_initrd, user_archive, ExtraFile, UserProgram};
use vmm::{Error, VmConfig};

/// The kernel and default program archive built from guest/ by build.rs.
static EMBEDDED_KERNEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kernel.elf"));
static EMBEDDED_PROGRAMS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/default.cpio"));
/// The floor guest (guest/floor) for `vmm bench`; empty when it did not build.
static EMBEDDED_FLOOR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/floor.elf"));

const MIN_MEMORY_MIB: u64 = 16;
const MAX_MEMORY_MIB: u64 = 64 * 1024;

#[derive(Parser, Debug)]
#[command(
    name = "vmm",
    version,
    about = "Boot a PVH kernel on KVM with a serial console on stdout and an exit port at 0xf4",
    after_help = "Exit status: the byte the guest wrote to port 0xf4; or 1 VMM internal error, \
                  2 bad command line, 3 bad kernel or program, 4 KVM unavailable, \
                  5 guest crashed, 124 --timeout expired.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Measure the kernel's trap round trips beside a do-nothing floor guest and the host
    /// (docs/bench.md)
    Bench(BenchArgs),
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Fewer iterations: about 2 s instead of about 10 s (for tests)
    #[arg(long)]
    quick: bool,

    /// Only the exact single-stepped ring-0 instruction counts of each path, ours and the
    /// floor's (about 1 s)
    #[arg(long, conflicts_with = "quick")]
    counts: bool,

    /// Also write the results as JSON to PATH; with no PATH (or "-"), print JSON instead of
    /// the table
    #[arg(long, value_name = "PATH", num_args = 0..=1, default_missing_value = "-")]
    json: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// PVH kernel ELF to boot [default: the kernel built from guest/kernel]
    #[arg(value_name = "KERNEL")]
    kernel: Option<PathBuf>,

    /// Guest RAM in MiB
    #[arg(short, long, value_name = "MIB", default_value_t = 512,
          value_parser = clap::value_parser!(u64).range(MIN_MEMORY_MIB..=MAX_MEMORY_MIB))]
    memory: u64,

    /// Kernel command line (at most 4095 bytes)
    #[arg(long, value_name = "STR", default_value = "")]
    cmdline: String,

    /// Stop the guest after this many seconds (exit status 124)
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    timeout: Option<f64>,

    /// A ring-3 program to run, with its arguments split as a POSIX shell splits them
    /// ("./prog 'one arg' b"); repeatable, started in order as pids 1..n, with the default
    /// programs beside them in /bin [default: the programs built from guest/user]
    #[arg(long, value_name = "PATH [ARG...]", conflicts_with = "initrd")]
    user: Vec<String>,

    /// Boot into our shell: `init sh` with every default program in /bin (and the --user ones),
    /// reading commands from stdin; a prompt when stdin is a terminal. The VMM's exit status is
    /// the shell's (`exit 3` gives 3)
    #[arg(long, conflicts_with = "initrd")]
    shell: bool,

    /// Pass FILE unchanged as the boot module (like QEMU's -initrd)
    #[arg(long, value_name = "FILE")]
    initrd: Option<PathBuf>,

    /// Put a host file in the guest's file tree at GUEST_PATH (absolute; default /NAME),
    /// read-only there; a directory brings its whole tree there; repeatable
    #[arg(
        long = "file",
        value_name = "HOST_PATH[:GUEST_PATH]",
        conflicts_with = "initrd"
    )]
    files: Vec<String>,

    /// Write the boot module this command line would boot (the --user or --shell programs,
    /// what the dynamically linked ones need, the --file files, the default set) to FILE and
    /// exit without booting; `scripts/qemu.sh --initrd FILE` boots the same under QEMU
    #[arg(long, value_name = "FILE", conflicts_with = "initrd")]
    write_initrd: Option<PathBuf>,

    /// Stop before the first instruction and wait for gdb on 127.0.0.1:PORT (0: any free
    /// port) or on a Unix socket (unix:PATH); see "Debugging with gdb" in README.md
    #[arg(long, value_name = "PORT|unix:PATH")]
    gdb: Option<vmm::gdb::GdbAddr>,

    /// At the end, print to stderr the VM exits that reached the VMM, by kind and device, with
    /// the KVM_RUN calls and the time in the guest and in the VMM, then the guest's counts
    /// (system calls by name, traps by vector, switches, idle), which adds `trace=events` to
    /// the kernel command line; `--stats=json`: all of it as one line of JSON; `--stats=exits`:
    /// the exit table only, the kernel left untraced
    #[arg(long, value_name = "json|exits", num_args = 0..=1, require_equals = true,
          default_missing_value = "table", value_parser = parse_stats)]
    stats: Option<vmm::vmm::StatsFormat>,

    /// Write the kernel's events (system calls, timer interrupts, page faults, idle, switches,
    /// signals, faults, start/exec/exit) and the VMM's exits to FILE as Chrome trace-event JSON
    /// (open it in ui.perfetto.dev); adds `trace=events` to the kernel command line
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,

    /// Draw the run to FILE as an SVG timeline: a lane per process, the kernel's and the
    /// VMM's (see "Watching a run" in README.md); FILE.html is a page that zooms and tells
    /// each span on hover; adds `trace=events` like --trace
    #[arg(long, value_name = "FILE")]
    timeline: Option<PathBuf>,

    /// Draw only this part of the run: times since the first event (10ms..25ms; ns, us, ms,
    /// s) or event numbers (2000..4000); either end may be left out
    #[arg(long, value_name = "START..END", requires = "timeline")]
    timeline_window: Option<vmm::timeline::Window>,

    /// Leave out the virtio console (virtio-mmio at 0xd0000000, IRQ 5, announced to the kernel
    /// as `virtio_mmio.device=4K@0xd0000000:5`); COM1 is then the only console
    #[arg(long)]
    no_virtio_console: bool,

    /// More logging (-v info, -vv debug, -vvv trace); RUST_LOG is honoured otherwise
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    verbose: u8,

    /// Less logging (-q errors only, -qq nothing)
    #[arg(short, long, action = clap::ArgAction::Count)]
    quiet: u8,
}

fn parse_stats(s: &str) -> Result<vmm::vmm::StatsFormat, String> {
    match s {
        "table" => Ok(vmm::vmm::StatsFormat::Table),
        "json" => Ok(vmm::vmm::StatsFormat::Json),
        "exits" => Ok(vmm::vmm::StatsFormat::ExitsOnly),
        _ => Err(format!("{s:?}: --stats takes no value, =json or =exits")),
    }
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(t) if t > 0.0 && t.is_finite() && t <= 1e9 => Ok(t),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

fn init_logging(args: &RunArgs) {
    let level = match (args.verbose, args.quiet) {
        (0, 0) => None,
        (1, _) => Some("info"),
        (2, _) => Some("debug"),
        (v, _) if v >= 3 => Some("trace"),
        (_, 1) => Some("error"),
        _ => Some("off"),
    };
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"));
    if let Some(level) = level {
        builder.parse_filters(level);
    }
    if args.verbose < 2 {
        // virtio-queue logs a guest's broken queue as an error each time it sees it; the
        // virtio console says it once itself, and the crate's lines are for -vv.
        builder.filter_module("virtio_queue", log::LevelFilter::Off);
    }
    builder.format_timestamp(None).init();
}

/// Turns the command line into a `VmConfig`, reading the kernel and the programs; None when
/// the work is done already (`--write-initrd`).
fn config_from(args: RunArgs) -> Result<Option<VmConfig>, Error> {
    // Checked here rather than by clap, whose message would repeat the whole (long) value.
    let traced = args.trace.is_some()
        || args.timeline.is_some()
        || args.stats.is_some_and(|s| s.counts_the_guest());
    let cmdline = if traced {
        format!("{} trace=events", args.cmdline)
            .trim_start()
            .to_string()
    } else {
        args.cmdline
    };
    let cmdline = if args.no_virtio_console {
        cmdline
    } else {
        let device = abi::virtio::MmioDevice {
            base: abi::virtio::CONSOLE_MMIO_BASE,
            size: abi::virtio::CONSOLE_MMIO_SIZE,
            irq: u32::from(abi::virtio::CONSOLE_IRQ),
        };
        format!("{cmdline} {}", device.cmdline_word())
            .trim_start()
            .to_string()
    };
    let cmdline = vmm::boot::pvh::Cmdline::new(cmdline)
        .map_err(|e| Error::Usage(format!("--cmdline: {e}")))?;
    let (kernel_path, kernel) = match args.kernel {
        Some(path) => {
            let bytes = vmm::boot::loader::read_user_file(&path)?;
            (path, bytes)
        }
        None if EMBEDDED_KERNEL.is_empty() => return Err(ImageError::NoEmbeddedKernel.into()),
        None => (
            vmm::boot::loader::embedded_kernel_path(),
            EMBEDDED_KERNEL.to_vec(),
        ),
    };
    let files = args
        .files
        .iter()
        // A malformed value is a bad command line (status 2), a missing file a bad image.
        .map(|spec| ExtraFile::parse(spec).map_err(|e| Error::Usage(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let files = vmm::initrd::expand_dirs(files)?;
    let module = if let Some(initrd) = &args.initrd {
        read_initrd(initrd)?
    } else if args.shell || !args.user.is_empty() {
        let programs = args
            .user
            .iter()
            .map(|spec| UserProgram::parse(spec))
            .collect::<Result<Vec<_>, _>>()?;
        if args.shell {
            use std::io::IsTerminal;
            let interactive = std::io::stdin().is_terminal();
            vmm::initrd::shell_archive(EMBEDDED_PROGRAMS, &programs, &files, interactive)?
        } else {
            user_archive(EMBEDDED_PROGRAMS, &programs, &files)?
        }
    } else {
        EMBEDDED_PROGRAMS.to_vec()
    };
    let module = if files.is_empty() {
        module
    } else {
        add_files(&module, &files)?
    };
    if let Some(out) = &args.write_initrd {
        std::fs::write(out, &module).map_err(|e| {
            Error::Usage(format!(
                "--write-initrd: cannot write {}: {e}",
                out.display()
            ))
        })?;
        return Ok(None);
    }
    Ok(Some(VmConfig {
        kernel_path,
        kernel,
        mem_mib: args.memory,
        cmdline,
        module: Some(module),
        timeout: args.timeout,
        gdb: args.gdb,
        stats: args.stats,
        trace: args.trace,
        timeline: args.timeline,
        timeline_window: args.timeline_window.unwrap_or(vmm::timeline::Window::Whole),
        virtio_console: !args.no_virtio_console,
    }))
}

/// Opens /dev/null on any of fds 0-2 that is closed (CI may start us without stdin), so that
/// none of our own descriptors (/dev/kvm, eventfds) lands there and is taken for the console.
fn reserve_standard_fds() {
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the descriptor flags; no memory is passed.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            // SAFETY: a NUL-terminated path constant; the lowest free fd, `fd`, is returned,
            // and it is deliberately kept open for the life of the process.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
}

fn main() -> ExitCode {
    reserve_standard_fds();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help or --version: print as clap does, status 0.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap's message is several lines (usage, hint); keep its first, as one line, with
            // the indented lines right after it when it ends in ':' (the missing arguments).
            let text = e.render().to_string();
            let mut lines = text.lines().skip_while(|l| l.trim().is_empty());
            let mut first = lines
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ")
                .to_string();
            if first.ends_with(':') {
                let items: Vec<&str> = lines
                    .take_while(|l| l.starts_with(' ') && !l.trim().is_empty())
                    .map(str::trim)
                    .collect();
                first = format!("{first} {}", items.join(", "));
            }
            eprintln!("vmm: error: {first} (see vmm --help)");
            return ExitCode::from(status::USAGE);
        }
    };
    init_logging(&cli.run);

    let result = match cli.command {
        Some(Command::Bench(args)) => {
            let opts = vmm::bench::BenchOptions {
                quick: args.quick,
                counts_only: args.counts,
                json: args.json,
            };
            let guests = vmm::bench::Guests {
                kernel: EMBEDDED_KERNEL,
                programs: EMBEDDED_PROGRAMS,
                floor: EMBEDDED_FLOOR,
            };
            vmm::bench::run(&opts, &guests)
        }
        None => config_from(cli.run).and_then(|config| match config {
            Some(config) => vmm::run(config),
            None => Ok(0),
        }),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Error::Timeout(secs)) => {
            eprintln!("vmm: guest did not finish within {secs} s");
            // The vCPU thread may still be inside KVM_RUN: end the whole process now.
            std::process::exit(status::TIMEOUT as i32);
        }
        Err(Error::Quit) => {
            eprintln!("\r\nvmm: stopped with Ctrl-A x");
            std::process::exit(status::QUIT_KEY as i32);
        }
        Err(e) => {
            eprintln!("vmm: error: {e}");
            ExitCode::from(e.exit_status())
        }
    }
}
