//! The user half of the x86_64 address space, as the tracing ABI sees it.

/// First address above user space: user addresses are `0..USER_END`
/// (the lower canonical half of a 48-bit address space).
pub const USER_END: u64 = 0x0000_8000_0000_0000;

/// Whether `addr` is a canonical user address (below [`USER_END`]).
pub const fn is_canonical_user(addr: u64) -> bool {
    addr < USER_END
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_half_is_canonical_user() {
        assert!(is_canonical_user(0));
        assert!(is_canonical_user(0x40_0000));
        assert!(is_canonical_user(USER_END - 1));
    }

    #[test]
    fn kernel_half_and_non_canonical_are_not() {
        assert!(!is_canonical_user(USER_END));
        assert!(!is_canonical_user(0xFFFF_8000_0000_0000));
        assert!(!is_canonical_user(u64::MAX));
    }
}
