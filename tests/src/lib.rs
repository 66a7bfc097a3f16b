//! Test harness: network namespaces that clean up after themselves, hosts
//! running overlayctl, and a BPF_PROG_TEST_RUN fixture.
//!
//! Everything a test creates carries a unique `ovt<pid>-<n>` prefix and is
//! removed by a `Drop` guard, also when the test panics. Only documentation
//! address ranges are used.

pub mod blast;
pub mod frames;
pub mod lab;
pub mod netns;
pub mod progtest;
