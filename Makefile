# One-command set-up, build, run and test. `make run` and `make test` install
# what is missing (QEMU, gdb, the Rust target) on a Debian machine first.

TARGET   := x86_64-unknown-none
RELEASE  := target/$(TARGET)/release
KERNEL   := $(RELEASE)/kernel
# Every folder under user/ or under a group of it (user/bin, user/tests, ...)
# with a src/main.rs is a program for /bin, named after its folder.
USER_PROGRAMS := $(sort $(notdir $(patsubst %/src/main.rs,%,\
                   $(wildcard user/*/src/main.rs user/*/*/src/main.rs))))
# Crates that build and test on the host.
HOST_CRATES   := -p abi -p ptrace-core -p qemu-tests $(if $(wildcard crates/gdb-remote/Cargo.toml),-p gdb-remote)
UNIT_CRATES   := -p abi -p ptrace-core $(if $(wildcard crates/gdb-remote/Cargo.toml),-p gdb-remote)
# What `make run` boots: the demo under strace.
APPEND        ?= init=/bin/strace -f /bin/demo
APT_INSTALL   := apt-get install -y --no-install-recommends
LOGS          := target/test-logs

SHELL         := /bin/bash
.SHELLFLAGS   := -o pipefail -c

.PHONY: all deps build run shell gdbserver test unit-test qemu-test lint bench fuzz clean

all: build

deps:
	@command -v qemu-system-x86_64 >/dev/null || { \
	  echo "installing qemu-system-x86"; \
	  $(SUDO) apt-get update -qq && $(SUDO) $(APT_INSTALL) qemu-system-x86; }
	@command -v gdb >/dev/null || { \
	  echo "installing gdb"; \
	  $(SUDO) apt-get update -qq && $(SUDO) $(APT_INSTALL) gdb; }
	@rustup target list --installed 2>/dev/null | grep -qx $(TARGET) || rustup target add $(TARGET)

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

build:
	cargo build --release --target $(TARGET) $(addprefix -p ,$(USER_PROGRAMS))
	cargo build --release --target $(TARGET) -p kernel

run: deps build
	APPEND="$(APPEND)" qemu/run.sh

shell: deps build
	MODE=interactive APPEND="init=/bin/init" TIMEOUT=86400 qemu/run.sh

# Boots PROGRAM under gdbserver with COM2 on 127.0.0.1:GDB_PORT for the
# host's gdb: make gdbserver PROGRAM=gdb-target [ARGS=loop] [GDB_PORT=1234]
PROGRAM  ?= gdb-target
GDB_PORT ?= 1234
gdbserver: deps build
	MACHINE=q35 MODE=batch TIMEOUT=86400 \
	  APPEND="init=/bin/gdbserver /bin/$(PROGRAM) $(ARGS)" \
	  EXTRA="-serial tcp:127.0.0.1:$(GDB_PORT),server=on,wait=off" qemu/run.sh

lint: build
	cargo fmt --all -- --check
	cargo clippy $(HOST_CRATES) --all-targets -- -D warnings
	cargo clippy --release --target $(TARGET) -p kernel $(addprefix -p ,$(USER_PROGRAMS)) -- -D warnings

unit-test:
	@mkdir -p $(LOGS)
	cargo test $(UNIT_CRATES) 2>&1 | tee $(LOGS)/unit.log

qemu-test: build
	@mkdir -p $(LOGS)
	cargo test -p qemu-tests -- --test-threads=2 2>&1 | tee $(LOGS)/qemu.log

# Everything, then one line with the totals of every cargo test run.
test: deps lint unit-test qemu-test
	@cat $(LOGS)/unit.log $(LOGS)/qemu.log | awk '/^test result:/ { p += $$4; f += $$6 } \
	  END { printf "total: %d passed, %d failed\n", p, f }'

bench: deps build
	cargo test -p qemu-tests --test bench -- --ignored --nocapture --test-threads=1

# The in-guest fuzzer (docs/fuzzing.md) for as long as asked:
# make fuzz [SEED=N] [OPS=M] [FUZZ_TIMEOUT=seconds]. SEED defaults to the
# current time; the run prints it, the operations done and sys:memory.
SEED         ?= $(shell date +%s)
OPS          ?= 1000000
FUZZ_TIMEOUT ?= 86400
fuzz: deps build
	@seed=$(SEED); echo "make fuzz: SEED=$$seed OPS=$(OPS)"; \
	  MODE=batch TIMEOUT=$(FUZZ_TIMEOUT) LOG=target/fuzz-$$seed.log \
	  APPEND="init=/bin/fuzz --seed $$seed --ops $(OPS)" qemu/run.sh

clean:
	cargo clean
