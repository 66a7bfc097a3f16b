//! The verifier's budget: every program must verify well inside the
//! kernel's limit of 1M processed instructions, so that one more branch
//! (or another kernel's verifier) does not tip it over.

use overlay_tests::prelude::*;

/// The kernel refuses a program whose verification processes more.
const VERIFIER_LIMIT: u32 = 1_000_000;
/// What a program may use of it.
const BUDGET: u32 = VERIFIER_LIMIT * 3 / 4;

#[test]
fn every_program_verifies_well_inside_the_limit() {
    with_fixture(|mut f| {
        f.load_trace();
        let mut over = Vec::new();
        for (name, prog) in f.ebpf.programs() {
            let info = prog.info().unwrap_or_else(|e| panic!("{name}: program info: {e}"));
            let n = info.verified_instruction_count().unwrap_or_else(|| panic!("{name}: no count"));
            eprintln!("{name}: {n} instructions processed by the verifier");
            if n > BUDGET {
                over.push(format!("{name}: {n}"));
            }
        }
        assert!(over.is_empty(), "over {BUDGET} of the verifier's {VERIFIER_LIMIT}: {over:?}");
    });
}
