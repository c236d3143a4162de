#!/usr/bin/env bash
# Runs our kernel and ring-3 programs under QEMU (-M microvm), as `vmm` runs them under KVM, and
# exits with the same status as `vmm` would: QEMU's isa-debug-exit reports a byte v written to
# port 0xf4 as (v << 1) | 1; this script turns it back into v.
#
#   scripts/qemu.sh                          the default demo (target/guest/default.cpio)
#   scripts/qemu.sh --user "PROG ARG..." ... these programs, packed as `vmm --user` packs them
#                                            (pids 1..n in order; the archive name is the basename),
#                                            but alone: without vmm's default set beside them, and
#                                            static only (for a dynamically linked one, let vmm
#                                            pack it: vmm --user PROG --write-initrd FILE, then
#                                            --initrd FILE here)
#   scripts/qemu.sh --initrd FILE            FILE as the boot module, unchanged
#   scripts/qemu.sh --pack OUT --user ...    only write the archive to OUT (cpio newc + START)
#
# Options: --cmdline STR (kernel command line: hz=N slice=N epoch=SECONDS), --timeout SECONDS
# (status 124 when it expires, as vmm), --kernel FILE, --memory MIB, --virtio (program output
# and input through a virtio console, as under vmm: microvm with acpi=off, so that QEMU names
# the device on the command line, and the modern virtio-mmio interface; the UART and the
# console share stdio), and after `--` any extra
# QEMU arguments. Environment: ACCEL (default tcg: the CPU emulated in full, so `syscall` and
# `int 0x80` take their ordinary paths; kvm for hardware virtualisation), QEMU (the binary).
#
# Build first: `cargo build --release -p vmm` leaves the kernel at
# target/guest/x86_64-unknown-none/release/kernel and the demo archive at target/guest/default.cpio.
#
# Exit status, as vmm's (docs/conventions.md): the byte the guest wrote to port 0xf4 (0-255: QEMU
# itself can only report its low 7 bits, so the script reads the byte from QEMU's trace of the
# write), or 124 --timeout expired; 1 QEMU failed (its message is on stderr); 2 bad usage;
# 3 kernel, archive or program missing, unreadable or not an ELF; 4 QEMU not installed; 5 the
# guest reset or stopped without writing to port 0xf4 (a triple fault, with -no-reboot).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
qemu=${QEMU:-qemu-system-x86_64}
accel=${ACCEL:-tcg}
kernel=$root/target/guest/x86_64-unknown-none/release/kernel
initrd=
pack_out=
cmdline=
timeout=
memory=512
virtio=
users=()
extra=()

die() { # status message
	echo "qemu.sh: $2" >&2
	exit "$1"
}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
	case $1 in
	--user) [ $# -ge 2 ] || die 2 "--user needs a value"; users+=("$2"); shift 2 ;;
	--initrd) [ $# -ge 2 ] || die 2 "--initrd needs a file"; initrd=$2; shift 2 ;;
	--pack) [ $# -ge 2 ] || die 2 "--pack needs a file"; pack_out=$2; shift 2 ;;
	--cmdline) [ $# -ge 2 ] || die 2 "--cmdline needs a value"; cmdline=$2; shift 2 ;;
	--timeout) [ $# -ge 2 ] || die 2 "--timeout needs seconds"; timeout=$2; shift 2 ;;
	--kernel) [ $# -ge 2 ] || die 2 "--kernel needs a file"; kernel=$2; shift 2 ;;
	--memory | -m) [ $# -ge 2 ] || die 2 "--memory needs MiB"; memory=$2; shift 2 ;;
	--virtio) virtio=1; shift ;;
	-h | --help) usage; exit 0 ;;
	--) shift; extra=("$@"); break ;;
	*) die 2 "unknown argument '$1' (see --help; programs go after --user)" ;;
	esac
done
[ -n "$initrd" ] && [ ${#users[@]} -gt 0 ] && die 2 "--initrd and --user exclude each other"
[ -n "$pack_out" ] && [ ${#users[@]} -eq 0 ] && die 2 "--pack needs at least one --user"

# --- A cpio "newc" archive (as vmm/src/initrd/cpio.rs writes it), in plain bash -------------
cpio_pos=0
cpio_pad() { # to a multiple of 4
	local n=$(((4 - cpio_pos % 4) % 4))
	[ "$n" -gt 0 ] && head -c "$n" /dev/zero
	cpio_pos=$((cpio_pos + n))
}
cpio_entry() { # ino mode name file-or-empty
	local ino=$1 mode=$2 name=$3 file=$4 size=0
	[ -n "$file" ] && size=$(stat -c %s "$file")
	# c_ino c_mode c_uid c_gid c_nlink c_mtime c_filesize c_devmajor c_devminor c_rdevmajor
	# c_rdevminor c_namesize c_check
	printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
		"$ino" "$mode" 0 0 1 0 "$size" 0 0 0 0 $((${#name} + 1)) 0
	printf '%s\0' "$name"
	cpio_pos=$((cpio_pos + 110 + ${#name} + 1))
	cpio_pad
	if [ -n "$file" ]; then
		cat "$file"
		cpio_pos=$((cpio_pos + size))
		cpio_pad
	fi
}

# Splits $1 into the array `words` as a POSIX shell would (quotes, backslashes; xargs's own
# splitting, close enough for program arguments), as `vmm --user` does with shlex.
split_spec() {
	words=()
	mapfile -d '' words < <(printf '%s\n' "$1" | xargs printf '%s\0') ||
		die 2 "--user $1: cannot split it (a quote not closed?)"
}

# One word as START reads it: as is when plain, else in single quotes ('\'' for a quote).
start_word() {
	case $1 in
	'' | *[!A-Za-z0-9_./=:,+@%^-]*) printf "'%s'" "${1//\'/\'\\\'\'}" ;;
	*) printf '%s' "$1" ;;
	esac
}

# Whether the ELF file $1 has a PT_INTERP program header (is dynamically linked).
has_interp() {
	local phoff phnum i
	phoff=$(od -An -tu8 -j32 -N8 "$1" | tr -d ' ')
	phnum=$(od -An -tu2 -j56 -N2 "$1" | tr -d ' ')
	for ((i = 0; i < phnum && i < 128; i++)); do
		[ "$(od -An -tu4 -j$((phoff + 56 * i)) -N4 "$1" | tr -d ' ')" = 3 ] && return 0
	done
	return 1
}

# Packs the --user programs with a START manifest to $1, as `vmm --user` does (without the
# default programs: those are in vmm, embedded at build time).
pack() {
	local out=$1 start names=() spec words name line i
	start=$(mktemp)
	for spec in "${users[@]}"; do
		split_spec "$spec"
		[ ${#words[@]} -gt 0 ] || die 2 "empty --user value"
		[ -f "${words[0]}" ] || die 3 "${words[0]}: no such program"
		[ -r "${words[0]}" ] || die 3 "${words[0]}: cannot read it"
		[ "$(head -c 4 "${words[0]}" | od -An -c | tr -d ' ')" = '177ELF' ] ||
			die 3 "${words[0]}: not an ELF file"
		has_interp "${words[0]}" &&
			die 3 "${words[0]}: dynamically linked (PT_INTERP): this packer does not bring its libraries; use vmm --user ${words[0]} --write-initrd FILE, then --initrd FILE"
		name=$(basename "${words[0]}")
		for i in START "${names[@]}"; do
			[ "$i" != "$name" ] || die 3 "two programs named $name in one archive"
		done
		names+=("$name")
		line=$(start_word "$name")
		for i in "${words[@]:1}"; do line+=" $(start_word "$i")"; done
		printf '%s\n' "$line" >>"$start"
	done
	{
		cpio_pos=0
		cpio_entry 1 $((0100755)) START "$start"
		i=2
		for spec in "${users[@]}"; do
			split_spec "$spec"
			cpio_entry "$i" $((0100755)) "$(basename "${words[0]}")" "${words[0]}"
			i=$((i + 1))
		done
		cpio_entry 0 0 'TRAILER!!!' ''
	} >"$out"
	rm -f "$start"
}

if [ -n "$pack_out" ]; then
	pack "$pack_out"
	exit 0
fi

# --- What QEMU needs --------------------------------------------------------------------------
command -v "$qemu" >/dev/null 2>&1 ||
	die 4 "$qemu is not installed (on Debian/Ubuntu: sudo apt-get install qemu-system-x86)"
[ -f "$kernel" ] ||
	die 3 "no kernel at $kernel: build it first with 'cargo build --release -p vmm'"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ ${#users[@]} -gt 0 ]; then
	initrd=$tmp/programs.cpio
	pack "$initrd"
elif [ -z "$initrd" ]; then
	initrd=$root/target/guest/default.cpio
	[ -f "$initrd" ] ||
		die 3 "no program archive at $initrd: build it first with 'cargo build --release -p vmm'"
fi
[ -f "$initrd" ] && [ -r "$initrd" ] || die 3 "$initrd: no such file, or not readable"

if [ -n "$virtio" ]; then
	machine=(-M microvm,acpi=off -global virtio-mmio.force-legacy=false
		-chardev stdio,id=console,mux=on -serial chardev:console
		-device virtio-serial-device -device virtconsole,chardev=console)
else
	machine=(-M microvm -serial stdio)
fi
cmd=("$qemu" "${machine[@]}" -accel "$accel" -m "$memory" -kernel "$kernel" -initrd "$initrd"
	-display none -nodefaults -no-reboot
	-device isa-debug-exit,iobase=0xf4,iosize=0x04)
[ -n "$cmdline" ] && cmd+=(-append "$cmdline")
cmd+=("${extra[@]}")
[ -n "$timeout" ] && cmd=(timeout --foreground "$timeout" "${cmd[@]}")

# The status QEMU exits with, (v << 1) | 1, loses v's top bit (exit statuses are 8 bits), so the
# byte itself is read from QEMU's trace of the write to isa-debug-exit. QEMU's own messages go to
# stderr; they tell its failures (status 1) from a guest's exit status 0 (also 1).
trace=$tmp/trace.log
cmd+=(-trace "memory_region_ops_write,file=$trace")
set +e
"${cmd[@]}" 2>"$tmp/stderr"
status=$?
set -e
cat "$tmp/stderr" >&2
if [ -n "$timeout" ] && [ $status -eq 124 ]; then
	echo "qemu.sh: the guest ran longer than $timeout s and was stopped" >&2
	exit 124
fi
if [ $status -eq 1 ] && grep -v 'warning:' "$tmp/stderr" | grep -q "^$(basename "$qemu"): "; then
	echo "qemu.sh: $qemu failed (its message is above)" >&2
	exit 1
fi
if [ $status -eq 0 ]; then
	echo "qemu.sh: the guest stopped without writing to port 0xf4 (reset or triple fault)" >&2
	exit 5
fi
if [ $((status & 1)) -eq 0 ]; then
	echo "qemu.sh: $qemu exited with status $status" >&2
	exit 1
fi
v=$(grep "name 'isa-debug-exit'" "$trace" 2>/dev/null | tail -n 1 | sed -n 's/.* value \(0x[0-9a-f]*\) .*/\1/p')
if [ -n "$v" ] && [ $(((v << 1 | 1) & 255)) -eq $status ]; then
	exit $((v & 255))
fi
exit $((status >> 1)) # no trace: right for 0-127
