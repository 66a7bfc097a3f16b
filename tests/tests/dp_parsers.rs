//! The kernel runs the host's parsers: every program passes the verifier, truncations and corruptions agree, and a fuzz corpus of mutated frames gets the verdicts and counters the host predicts.
//! The real programs run on crafted frames through BPF_PROG_TEST_RUN:
//! verdict, exact output bytes and exact counters.

use overlay_tests::prelude::*;

#[test]
fn every_program_passes_the_verifier() {
    with_fixture(|f| {
        for name in overlay_user::loader::ALL_PROGRAMS {
            let p: &aya::programs::SchedClassifier =
                f.ebpf.program(name).expect("in object").try_into().expect("classifier");
            let info = p.info().expect("loaded program info");
            assert!(info.id() > 0, "{name} loaded");
        }
    });
}

/// Every truncation of a VXLAN frame (and a few corruptions) gets the same
/// verdict from the kernel as from the host parser; counters add up to the
/// number of frames sent.
#[test]
fn kernel_and_host_parsers_agree() {
    with_fixture(|mut f| {
        let full = from_vtep(PEER, 100, &tenant_frame(VM2, REMOTE_VM));
        // From 34 bytes: BPF_PROG_TEST_RUN refuses shorter IPv4 frames.
        let mut frames: Vec<Vec<u8>> = (34..full.len()).map(|n| full[..n].to_vec()).collect();
        for (off, val) in [(14usize, 0x44u8), (14, 0x4f), (23, 6), (42, 0), (42, 0xff), (16, 0xff), (38, 0)] {
            let mut v = full.clone();
            v[off] = val;
            frames.push(v);
        }
        f.reset();
        let (mut passes, mut drops) = (0u64, 0u64);
        for fr in &frames {
            let host = parse_underlay(&fr[..], &rx_config(LOCAL, 0), false);
            let (v, out) = f.underlay(fr);
            match host {
                Err(Reject::Pass(_)) => {
                    assert_eq!(v, TC_ACT_OK, "host says pass for {} bytes", fr.len());
                    assert_eq!(&out, fr);
                    passes += 1;
                }
                Err(Reject::Drop(_)) => {
                    assert_eq!(v, TC_ACT_SHOT, "host says drop for {} bytes", fr.len());
                    drops += 1;
                }
                Ok(_) => assert_ne!(v, TC_ACT_OK, "host accepts; kernel must not pass to host"),
            }
        }
        let c = f.nonzero();
        let pass_total =
            c.get("pass_host").copied().unwrap_or(0) + c.get("pass_fragment").copied().unwrap_or(0);
        assert_eq!(pass_total, passes);
        let drop_total: u64 =
            Counter::ALL.iter().filter(|x| x.is_drop()).map(|x| c.get(x.name()).copied().unwrap_or(0)).sum();
        assert!(drop_total >= drops, "every host drop is a counted kernel drop ({drop_total} < {drops})");
        assert_eq!(c["rx_underlay"], frames.len() as u64);
    });
}

/// The fuzz corpus (`pktbuild::mutate` of valid frames, 3000 seeds per
/// side) through the real programs: for every frame the kernel's verdict is
/// the one the host parsers and a model of the admission rules predict, and
/// every counter adds up exactly.
#[test]
fn fuzz_corpus_host_and_kernel_agree() {
    use std::collections::{BTreeMap, HashMap};
    with_fixture(|mut f| {
        f.reset();
        // Underlay: VXLAN from the peer, unicast to VM2 and broadcast.
        let bases = [
            from_vtep(PEER, 100, &tenant_frame(VM2, REMOTE_VM)),
            from_vtep(PEER, 100, &tenant_frame([0xff; 6], [2, 0, 0, 0, 7, 7])),
            from_vtep(PEER, 100, &push_tag(&tenant_frame(VM1, [2, 0, 0, 0, 7, 8]), 0x8100, 10)),
        ];
        let mut want: BTreeMap<&str, u64> = BTreeMap::new();
        let mut learned: HashMap<[u8; 6], bool> = HashMap::new(); // MAC -> behind the peer
        let (mut admitted, mut runs) = (0u64, 0u64);
        for seed in 0..3000u64 {
            let fr = mutate(&bases[(seed % 3) as usize], seed);
            // BPF_PROG_TEST_RUN refuses frames under 14 bytes and IPv4 under 34.
            if fr.len() < 14 || (fr[12..14] == [8, 0] && fr.len() < 34) {
                continue;
            }
            runs += 1;
            let (v, out) = f.underlay(&fr);
            let at = format!("seed {seed}: {fr:02x?}");
            let expect = match parse_underlay(&fr[..], &rx_config(LOCAL, 0), false) {
                Err(Reject::Pass(c)) => {
                    assert_eq!((v, &out), (TC_ACT_OK, &fr), "{at}: passed untouched");
                    c
                }
                Err(Reject::Drop(c)) => c,
                Ok(rx) => {
                    let inner_type = u16::from_be(rx.inner.ethertype_be);
                    let src = rx.inner.src;
                    if rx.outer_dst[0] & 1 == 0 && rx.outer_dst != U0_MAC {
                        DropOtherHost
                    } else if !is_unicast_vtep(&rx.src_vtep_be) || rx.src_vtep_be == vtep4(LOCAL) {
                        DropVtepSrcInvalid
                    } else if rx.vni != 100 {
                        DropUnknownVni
                    } else if rx.src_vtep_be != vtep4(PEER) {
                        DropNotPeer
                    } else if inner_type == 0x8100 || inner_type == 0x88a8 {
                        DropInnerTagged
                    } else if src[0] & 1 != 0 || src == [0; 6] {
                        DropSrcMacInvalid
                    } else if src == VM2 {
                        DropSrcMacStatic
                    } else {
                        admitted += 1;
                        if src != REMOTE_VM {
                            learned.insert(src, true); // REMOTE_VM: static, already at the peer
                        }
                        let dst = rx.inner.dst;
                        if dst[0] & 1 == 0 && (dst == REMOTE_VM || learned.contains_key(&dst)) {
                            DropSplitHorizon
                        } else {
                            assert!(v == TC_ACT_REDIRECT || v == TC_ACT_STOLEN, "{at}: delivered, got {v}");
                            Decap
                        }
                    }
                }
            };
            if expect.is_drop() {
                assert_eq!(v, TC_ACT_SHOT, "{at}: dropped as {}", expect.name());
            }
            *want.entry(expect.name()).or_insert(0) += 1;
        }
        let got = f.nonzero();
        for (name, n) in &want {
            assert_eq!(got.get(name), Some(n), "counter {name}: got {got:?}, want {want:?}");
        }
        // No other counter moved: every drop and pass is one the model expects.
        for c in Counter::ALL.iter().filter(|c| c.is_drop() || matches!(c, PassHost | PassFragment)) {
            assert_eq!(
                got.get(c.name()),
                want.get(c.name()),
                "counter {}: got {got:?}, want {want:?}",
                c.name()
            );
        }
        assert_eq!(got["rx_underlay"], runs);
        assert_eq!(
            got.get("learned").copied().unwrap_or(0),
            learned.len() as u64,
            "one entry per new source"
        );
        eprintln!("underlay: {runs} frames, {admitted} admitted, {want:?}");

        // Tenant port p1 (access, blue): parse rules, then the VLAN rule.
        f.reset();
        let bases = [
            tenant_frame(VM2, VM1),
            push_tag(&tenant_frame(VM2, VM1), 0x8100, 10),
            push_tag(&tenant_frame(VM2, VM1), 0x8100, 0xe000),
            push_tag(&push_tag(&tenant_frame(VM2, VM1), 0x8100, 10), 0x88a8, 20),
        ];
        let mut want: BTreeMap<&str, u64> = BTreeMap::new();
        let mut runs = 0;
        for seed in 0..3000u64 {
            let fr = mutate(&bases[(seed % 4) as usize], seed);
            if fr.len() < 14 || (fr[12..14] == [8, 0] && fr.len() < 34) {
                continue;
            }
            runs += 1;
            let (v, _) = f.tenant("p1", &fr);
            let at = format!("seed {seed}: {fr:02x?}");
            let expect = match parse_l2(&fr[..], None, false) {
                Err(Reject::Drop(c)) | Err(Reject::Pass(c)) => c,
                Ok(l2) if l2.vid != overlay_common::NO_VLAN => DropVlanNotAllowed,
                Ok(_) => RxTenant,
            };
            if expect.is_drop() {
                assert_eq!(v, TC_ACT_SHOT, "{at}: dropped as {}", expect.name());
            }
            *want.entry(expect.name()).or_insert(0) += 1;
        }
        let got = f.nonzero();
        for (name, n) in &want {
            assert_eq!(got.get(name), Some(n), "counter {name}: got {got:?}, want {want:?}");
        }
        // No other parse-level drop moved (drops after the frame is a
        // tenant's, e.g. a spoofed static source, are not modelled here).
        for c in [
            DropMalformed,
            DropVlanNotAllowed,
            DropVlanPriorityTagged,
            DropVlan4095,
            DropVlanQinq,
            DropSrcMacInvalid,
            DropNotAPort,
        ] {
            assert_eq!(
                got.get(c.name()),
                want.get(c.name()),
                "counter {}: got {got:?}, want {want:?}",
                c.name()
            );
        }
        eprintln!("tenant: {runs} frames, {want:?}");
    });
}
