//! BPF programs of the overlay datapath. One file per attach point:
//! - `tenant_tc`: TC ingress of tenant ports (frames leaving a VM/container).
//! - `vtep_tc`: TC ingress of the underlay interface (VXLAN arriving).
//! - `vtep_xdp`: XDP on the underlay, the known-unicast fast path.
//!
//! `tenant_trace` and `vtep_trace` are the two TC programs compiled with the
//! trace flag (`trace::Trace`), for `overlayctl trace`; never attached.
#![no_std]
#![feature(core_intrinsics)]
#![allow(internal_features)]
#![no_main]

mod access;
mod admit;
mod clock;
mod csum_chunks;
mod deliver;
mod fdb;
mod fib;
mod gso_tunnel;
mod maps;
mod monitor;
mod neigh;
mod rpf;
mod stats;
mod tenant_tc;
mod trace;
mod udp_csum;
mod vtep_tc;
mod vtep_xdp;
mod vxlan_tx;
mod xdp_csum;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects programs that can reach this; it only exists
    // because no_std requires it.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";
