//! Conformance tests for contract section 5 (registers and memory) and the
//! register and memory points of 4a: `regs/int`, `regs/float`, `regs/env`
//! and `mem` as a tracer uses them on a forked tracee.
#![no_std]
#![no_main]

extern crate alloc;

mod files;
mod float;
mod gpr;
mod harness;
mod mem;
mod probes;

use rt::Tests;

rt::entry!(main);

fn main(_args: &[&str]) -> i32 {
    let mut t = Tests::new();
    t.run("regs_int_round_trip", gpr::round_trip);
    t.run(
        "regs_int_round_trip_syscall_stop",
        gpr::round_trip_syscall_stop,
    );
    t.run("regs_int_rip_rsp_noncanonical_einval", gpr::rip_rsp_checked);
    t.run("regs_int_cs_ss_fs_ignored", gpr::segments_ignored);
    t.run(
        "regs_int_rflags_forbidden_bits_ignored",
        gpr::rflags_forbidden_ignored,
    );
    t.run("regs_int_rflags_writable_bits", gpr::rflags_writable);
    t.run(
        "regs_int_tf_hidden_while_stepping",
        gpr::tf_hidden_while_stepping,
    );
    t.run("regs_sizes_einval", files::sizes);
    t.run("regs_write_untraced_ebusy", files::not_held_untraced);
    t.run("regs_write_traced_running_ebusy", files::not_held_traced);
    t.run("regs_mem_after_exit_esrch", files::after_exit);
    t.run("regs_float_st0_xmm7", float::read_st0_xmm7);
    t.run("regs_float_write_round_trip", float::write_round_trip);
    t.run("regs_float_mxcsr_reserved_einval", float::mxcsr_reserved);
    t.run("regs_env_noncanonical_einval", float::env_noncanonical);
    t.run("regs_env_round_trip", float::env_round_trip);
    t.run("mem_read_stack", mem::read_stack);
    t.run("mem_write_stack", mem::write_stack);
    t.run("mem_bulk_64k", mem::bulk);
    t.run("mem_short_at_mapping_end", mem::short_at_mapping_end);
    t.run(
        "mem_read_cstr_at_mapping_end",
        mem::read_cstr_at_mapping_end,
    );
    t.run("mem_efault_unmapped", mem::efault_unmapped);
    t.run("mem_kernel_addresses", mem::kernel_addresses);
    t.run("mem_plant_breakpoint_in_text", mem::plant_breakpoint);
    t.run("mem_untouched_page_zero", mem::untouched_zero);
    t.finish()
}
