//! Conformance tests for contract section 5 (registers and memory) and the
//! register and memory points of 4a: `regs/int`, `regs/float`, `regs/env`
//! and `mem` as a tracer uses them on a forked tracee.
#![no_std]
#![no_main]

extern crate alloc;

mod files;
mod float;
mod gpr;
mod mem;
mod probes;

use rt::Tests;

rt::entry!(main);

fn main(_args: &[&str]) -> i32 {
    let mut t = Tests::new();
    testkit::run(&mut t, "regs_int_round_trip", gpr::round_trip);
    testkit::run(
        &mut t,
        "regs_int_round_trip_syscall_stop",
        gpr::round_trip_syscall_stop,
    );
    testkit::run(
        &mut t,
        "regs_int_rip_rsp_noncanonical_einval",
        gpr::rip_rsp_checked,
    );
    testkit::run(&mut t, "regs_int_cs_ss_fs_ignored", gpr::segments_ignored);
    testkit::run(
        &mut t,
        "regs_int_rflags_forbidden_bits_ignored",
        gpr::rflags_forbidden_ignored,
    );
    testkit::run(
        &mut t,
        "regs_int_rflags_writable_bits",
        gpr::rflags_writable,
    );
    testkit::run(
        &mut t,
        "regs_int_tf_hidden_while_stepping",
        gpr::tf_hidden_while_stepping,
    );
    testkit::run(&mut t, "regs_sizes_einval", files::sizes);
    testkit::run(
        &mut t,
        "regs_write_untraced_ebusy",
        files::not_held_untraced,
    );
    testkit::run(
        &mut t,
        "regs_write_traced_running_ebusy",
        files::not_held_traced,
    );
    testkit::run(&mut t, "regs_mem_after_exit_esrch", files::after_exit);
    testkit::run(&mut t, "regs_float_st0_xmm7", float::read_st0_xmm7);
    testkit::run(
        &mut t,
        "regs_float_write_round_trip",
        float::write_round_trip,
    );
    testkit::run(
        &mut t,
        "regs_float_mxcsr_reserved_einval",
        float::mxcsr_reserved,
    );
    testkit::run(
        &mut t,
        "regs_env_noncanonical_einval",
        float::env_noncanonical,
    );
    testkit::run(&mut t, "regs_env_round_trip", float::env_round_trip);
    testkit::run(&mut t, "mem_read_stack", mem::read_stack);
    testkit::run(&mut t, "mem_write_stack", mem::write_stack);
    testkit::run(&mut t, "mem_bulk_64k", mem::bulk);
    testkit::run(
        &mut t,
        "mem_short_at_mapping_end",
        mem::short_at_mapping_end,
    );
    testkit::run(
        &mut t,
        "mem_read_cstr_at_mapping_end",
        mem::read_cstr_at_mapping_end,
    );
    testkit::run(&mut t, "mem_efault_unmapped", mem::efault_unmapped);
    testkit::run(&mut t, "mem_kernel_addresses", mem::kernel_addresses);
    testkit::run(
        &mut t,
        "mem_plant_breakpoint_in_text",
        mem::plant_breakpoint,
    );
    testkit::run(&mut t, "mem_untouched_page_zero", mem::untouched_zero);
    t.finish()
}
