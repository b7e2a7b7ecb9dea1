#!/usr/bin/env bash
# Boots the kernel once under QEMU (TCG) and reports how the run ended.
#
#   KERNEL   kernel ELF (default target/x86_64-unknown-none/release/kernel)
#   APPEND   kernel command line                  (default empty)
#   MACHINE  microvm | q35                        (default microvm)
#   MEMORY   guest memory                         (default 256M)
#   TIMEOUT  seconds before the run is killed     (default 60)
#   LOG      serial log file                      (default target/qemu.log)
#   MODE     batch (serial to LOG and stdout) | quiet (serial to LOG only)
#            | interactive (serial on this terminal, Ctrl-A x quits; no log)
#   EXTRA    more QEMU arguments (e.g. a second serial port)
#
# Exit status: 0 when the kernel reported success (QEMU status 33); 35
# failure, 37 kernel panic, 39 kernel fault, 124 timeout, 2 when QEMU
# exited 0 (the kernel never wrote the exit device: triple fault, reset),
# 1 when QEMU itself failed. On any failure the serial log is printed.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
KERNEL=${KERNEL:-$root/target/x86_64-unknown-none/release/kernel}
APPEND=${APPEND:-}
MACHINE=${MACHINE:-microvm}
MEMORY=${MEMORY:-256M}
TIMEOUT=${TIMEOUT:-60}
LOG=${LOG:-$root/target/qemu.log}
MODE=${MODE:-batch}
EXTRA=${EXTRA:-}

mkdir -p "$(dirname "$LOG")"
: > "$LOG"
args=(-accel tcg -machine "$MACHINE" -cpu max -m "$MEMORY" -no-reboot
      -kernel "$KERNEL" -append "$APPEND"
      -device isa-debug-exit,iobase=0xf4,iosize=0x04)
# shellcheck disable=SC2206
extra=($EXTRA)

case "$MODE" in
interactive)
    # --foreground keeps the terminal usable; the log is what QEMU's own
    # serial multiplexer cannot also write, so it stays empty here.
    timeout --foreground "$TIMEOUT" qemu-system-x86_64 "${args[@]}" -nographic "${extra[@]}"
    status=$?
    ;;
quiet)
    timeout --kill-after=5 "$TIMEOUT" qemu-system-x86_64 "${args[@]}" \
        -display none -monitor none -serial "file:$LOG" "${extra[@]}" </dev/null
    status=$?
    ;;
*)
    timeout --kill-after=5 "$TIMEOUT" qemu-system-x86_64 "${args[@]}" \
        -display none -monitor none -serial stdio "${extra[@]}" </dev/null | tee "$LOG"
    status=${PIPESTATUS[0]}
    ;;
esac

case $status in
33) exit 0 ;;
35) why="the kernel reported failure" ;;
37) why="kernel panic" ;;
39) why="kernel fault (unexpected CPU exception)" ;;
124 | 137) why="timeout after ${TIMEOUT}s"; status=124 ;;
0) why="QEMU exited 0: the kernel never wrote the exit device (triple fault or reset?)"; status=2 ;;
*) why="QEMU failed with status $status"; status=1 ;;
esac
if [ "$MODE" = quiet ]; then
    echo "---- serial log ($LOG) ----" >&2
    cat "$LOG" >&2
    echo "---- end of serial log ----" >&2
fi
echo "qemu/run.sh: FAILED: $why (machine $MACHINE, append '$APPEND')" >&2
exit "$status"
