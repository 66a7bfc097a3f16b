//! The datapath's performance goals (issue #19), each read off this run:
//! the figure, and met or missed. Nothing here is typed in by hand.

use std::{collections::BTreeMap, fmt::Write as _};

use super::{measure::median, report::verdict};

type Results<'a> = BTreeMap<&'a str, BTreeMap<&'static str, Vec<f64>>>;

fn rounds(results: &Results, variant: &str, key: &str) -> Vec<f64> {
    results.get(variant).and_then(|m| m.get(key)).cloned().unwrap_or_default()
}

/// `x` against `factor` × `base` on metric `key` (higher or lower is
/// better): the ratio of the medians with the rounds' verdict, and met or
/// missed by the medians.
fn ratio_goal(
    results: &Results,
    key: &str,
    x: &str,
    base: &str,
    factor: f64,
    higher_better: bool,
) -> (String, String) {
    let (xs, bs) = (rounds(results, x, key), rounds(results, base, key));
    if xs.is_empty() || bs.is_empty() {
        return ("not measured".into(), "-".into());
    }
    let ratio = median(&xs) / median(&bs);
    let met = if higher_better { ratio >= factor } else { ratio <= factor };
    (
        format!("{:.2} vs {:.2}: {}", median(&xs), median(&bs), verdict(&xs, &bs, higher_better)),
        if met { "met".into() } else { "missed".into() },
    )
}

/// A program-cost row's ns.
fn cost(rows: &[(String, String, f64)], name: &str, bytes: &str) -> Option<f64> {
    rows.iter().find(|(n, b, _)| n == name && b == bytes).map(|r| r.2)
}

/// The goals table (markdown).
pub fn table(results: &Results, rows: &[(String, String, f64)]) -> String {
    let mut g: Vec<(String, String, String)> = Vec::new();
    let mut ratio = |what: &str, key: &str, x: &str, base: &str, factor: f64, hb: bool| {
        let (m, v) = ratio_goal(results, key, x, base, factor, hb);
        g.push((what.into(), m, v));
    };
    ratio("64-byte rate: (c) >= (a)", "small_kpps", "overlay", "bridge", 1.0, true);
    ratio("64-byte rate: (c) >= 2.0 x (b)", "small_kpps", "overlay", "kvxlan", 2.0, true);
    ratio("TCP, 1 stream: (c) >= 1.15 x (b)", "tcp_1_gbps", "overlay", "kvxlan", 1.15, true);
    ratio("latency p50: (c) <= (a)", "rtt_p50_us", "overlay", "bridge", 1.0, false);
    let base = cost(rows, "baseline", "64");
    for (case, limit) in [("encap", 300.0), ("decap", 200.0)] {
        let over = cost(rows, case, "64").zip(base).map(|(c, b)| c - b);
        g.push((
            format!("{case} <= {limit:.0} ns over baseline (64 bytes)"),
            over.map(|o| format!("{o:.0} ns")).unwrap_or_else(|| "not measured".into()),
            over.map(|o| if o <= limit { "met" } else { "missed" }).unwrap_or("-").into(),
        ));
    }
    let (small, big) = (
        cost(rows, "encap to one of 100 FDB entries", "64"),
        cost(rows, "encap to one of 1M FDB entries", "64"),
    );
    g.push((
        "encap with 1M FDB entries within 25% of 100 entries".into(),
        small
            .zip(big)
            .map(|(s, b)| format!("{b:.0} vs {s:.0} ns: +{:.0}%", (b / s - 1.0) * 100.0))
            .unwrap_or_else(|| "not measured".into()),
        small.zip(big).map(|(s, b)| if b <= s * 1.25 { "met" } else { "missed" }).unwrap_or("-").into(),
    ));
    let (one, many) = (cost(rows, "flood to 1 peer VTEP", "64"), cost(rows, "flood to 64 peer VTEPs", "64"));
    g.push((
        "flood: cost of each further peer VTEP (report only)".into(),
        one.zip(many)
            .map(|(o, m)| {
                format!("{:.0} ns a copy ((64 peers - 1 peer) / 63, transmit included)", (m - o) / 63.0)
            })
            .unwrap_or_else(|| "not measured".into()),
        "-".into(),
    ));
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nGoals (#19), from this run: rates and latency by the medians of the rounds (with the rounds' own \
         ahead/even/behind), program costs from the table above.\n"
    );
    let _ = writeln!(t, "| goal | measured | |");
    let _ = writeln!(t, "|---|---|---|");
    for (what, m, v) in g {
        let _ = writeln!(t, "| {what} | {m} | {v} |");
    }
    t
}
