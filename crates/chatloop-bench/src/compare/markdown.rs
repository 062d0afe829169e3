//! The summary of a comparison in Markdown (`compare.md`): the fan-out table with ratios, the
//! window sweep, latency against offered load with capacity at the SLO, the ramp, and whether
//! chatloop met its targets. Every figure comes from [`summary`](super::summary); nothing here
//! computes one of its own.

use super::chart::rounds;
use super::plan::{Plan, GENERATOR_BOUND_PCT, SLO_P99};
use super::summary::{capacity, fanout, of, rate, step, steps, Phase, Sample, Step};
use crate::render::us;
use std::fmt::Write as _;

/// The summary in Markdown: see the module docs; `context` says when and where.
pub fn summary(plan: &Plan, samples: &[Sample], context: &str) -> String {
    let mut md = String::new();
    let me = plan.servers[0].as_str();
    let peers = &plan.servers[1..];
    let _ = writeln!(md, "# chatloop bench compare\n\n{context}\n");
    let _ = writeln!(
        md,
        "Closed-loop fan-out, {}-byte Text messages, each server at its best window; {}, \
         servers interleaved; median (min–max) deliveries/s.\n",
        plan.size,
        rounds(plan.rounds)
    );
    let _ = writeln!(
        md,
        "| shape | server | window | deliveries/s | min–max | {me} ÷ server | server CPU | generator CPU | CPU-s per M | lost+errors |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &shape in &plan.shapes {
        let base = fanout(samples, me, shape).median;
        for server in &plan.servers {
            let f = fanout(samples, server, shape);
            let _ = writeln!(
                md,
                "| {} | {server} | {} | {} | {}–{} | {} | {:.0}% | {:.0}% | {} | {} |",
                shape.name(),
                f.window.map_or("none clean".into(), |w| w.to_string()),
                rate(f.median),
                rate(f.range.0),
                rate(f.range.1),
                if f.median > 0.0 {
                    format!("{:.2}", base / f.median)
                } else {
                    "-".into()
                },
                f.cpu.0,
                f.cpu.1,
                f.cpu_per_million.map_or("-".into(), |c| format!("{c:.3}")),
                f.lost
            );
        }
    }
    window_table(&mut md, plan, samples);
    latency_tables(&mut md, plan, samples);
    ramp_table(&mut md, plan, samples);
    targets(&mut md, plan, samples, me, peers);
    md
}

/// Phase 1: deliveries/s by window, every server and shape.
fn window_table(md: &mut String, plan: &Plan, samples: &[Sample]) {
    let _ = writeln!(
        md,
        "\n## Closed-loop fan-out by window (one run each; * marks a run with loss or errors)\n"
    );
    let head: Vec<String> = plan.windows.iter().map(|w| format!("w={w}")).collect();
    let _ = writeln!(md, "| shape | server | {} |", head.join(" | "));
    let _ = writeln!(md, "|---|---|{}", "---:|".repeat(plan.windows.len()));
    for &shape in &plan.shapes {
        for server in &plan.servers {
            let cells: Vec<String> = plan
                .windows
                .iter()
                .map(|&w| {
                    of(samples, Phase::Window, server, shape)
                        .find(|s| s.window == Some(w))
                        .map_or("-".into(), |s| {
                            let bad = s.report.lost() + s.report.errors() > 0;
                            format!("{}{}", rate(s.report.rate), if bad { "*" } else { "" })
                        })
                })
                .collect();
            let _ = writeln!(
                md,
                "| {} | {server} | {} |",
                shape.name(),
                cells.join(" | ")
            );
        }
    }
}

/// Phase 3: one table per server, then capacity at the SLO.
fn latency_tables(md: &mut String, plan: &Plan, samples: &[Sample]) {
    let _ = writeln!(
        md,
        "\n## Latency against offered load ({}, fixed rate, median of {})\n\n\
         A step passes with nothing lost or unsent and p99 ≤ {} ms. \"gen-bound\": the \
         generator used over {GENERATOR_BOUND_PCT:.0}% of its core, so the step measured it too.\n",
        plan.latency_shape.name(),
        rounds(plan.rounds),
        SLO_P99.as_millis()
    );
    let _ = writeln!(
        md,
        "| server | offered | achieved | p50 | p99 | p99.9 | lost | unsent/late | server CPU | generator CPU | CPU-s per M | |"
    );
    let _ = writeln!(
        md,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for server in &plan.servers {
        for s in steps(plan, samples, server) {
            let mark = match (s.passes(), s.generator_bound()) {
                (true, false) => "pass",
                (true, true) => "pass, gen-bound",
                (false, false) => "FAIL",
                (false, true) => "fail, gen-bound",
            };
            let _ = writeln!(
                md,
                "| {server} | {} | {} | {} | {} | {} | {} | {} | {:.0}% | {:.0}% | {} | {mark} |",
                rate(s.offered),
                rate(s.achieved),
                us(s.p50),
                us(s.p99),
                us(s.p999),
                s.lost,
                s.unsent,
                s.cpu.0,
                s.cpu.1,
                s.cpu_per_million.map_or("-".into(), |c| format!("{c:.3}"))
            );
        }
    }
    let _ = writeln!(
        md,
        "\n| server | capacity at SLO (deliveries/s) |\n|---|---|"
    );
    for server in &plan.servers {
        let _ = writeln!(
            md,
            "| {server} | {} |",
            capacity_text(&steps(plan, samples, server))
        );
    }
}

/// `2.00M`, `≥ 4.00M (generator-bound beyond)` or `none`.
fn capacity_text(steps: &[Step]) -> String {
    match capacity(steps) {
        (Some(c), false) => rate(c),
        (Some(c), true) => format!("≥ {} (generator-bound beyond)", rate(c)),
        (None, _) => "none (the lowest step failed)".into(),
    }
}

/// Phase 4: each server's largest passing step and why the next failed.
fn ramp_table(md: &mut String, plan: &Plan, samples: &[Sample]) {
    let r = &plan.ramp;
    let _ = writeln!(
        md,
        "\n## Ramp ({} senders × {} msg/s, +{} clients a step up to {}, p95 ≤ {} ms)\n",
        r.senders,
        r.rate,
        r.step,
        r.clients,
        r.limit.as_millis()
    );
    let _ = writeln!(
        md,
        "| server | largest passing step | the step that failed | its server / generator CPU |\n|---|---|---|---|"
    );
    for server in &plan.servers {
        let Some(s) = samples
            .iter()
            .find(|s| s.phase == Phase::Ramp && &s.server == server)
        else {
            continue;
        };
        let best = s
            .report
            .best_step()
            .map_or("none".into(), |c| format!("{c} clients"));
        let (failed, cpu) = match s.report.steps.iter().find(|st| !st.passed()) {
            None => ("none".to_owned(), String::new()),
            Some(st) => (
                format!(
                    "{} clients: {}",
                    st.clients,
                    st.failure.as_deref().unwrap_or("")
                ),
                format!(
                    "{:.0}% / {:.0}%{}",
                    st.cpu.server.unwrap_or(0.0),
                    st.cpu.generator,
                    if st.cpu.generator > GENERATOR_BOUND_PCT {
                        " (gen-bound)"
                    } else {
                        ""
                    }
                ),
            ),
        };
        let _ = writeln!(md, "| {server} | {best} | {failed} | {cpu} |");
    }
}

/// The targets: ≥ 1.5× the best peer's fan-out on every shape; p99 ≤ that peer's, with
/// zero loss, at every offered load up to the best peer's capacity.
fn targets(md: &mut String, plan: &Plan, samples: &[Sample], me: &str, peers: &[String]) {
    if peers.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Targets\n");
    for &shape in &plan.shapes {
        let mine = fanout(samples, me, shape).median;
        let (best, peer) = peers
            .iter()
            .map(|p| (fanout(samples, p, shape).median, p.as_str()))
            .fold((0.0, ""), |a, b| if b.0 > a.0 { b } else { a });
        let ratio = if best > 0.0 {
            mine / best
        } else {
            f64::INFINITY
        };
        let _ = writeln!(
            md,
            "- fan-out {}: {me} {} vs the best peer ({peer}) {}: {ratio:.2}× (target ≥ 1.5×): {}",
            shape.name(),
            rate(mine),
            rate(best),
            if ratio >= 1.5 { "met" } else { "NOT met" }
        );
    }
    let (peer, cap) = peers
        .iter()
        .map(|p| {
            (
                p.as_str(),
                capacity(&steps(plan, samples, p)).0.unwrap_or(0.0),
            )
        })
        .fold(("", 0.0), |a, b| if b.1 > a.1 { b } else { a });
    if cap == 0.0 {
        let _ = writeln!(md, "- latency: no peer passed any step; nothing to compare");
        return;
    }
    let mut worse = Vec::new();
    for &offered in plan.loads.iter().filter(|&&o| o <= cap) {
        let (mine, theirs) = (step(samples, me, offered), step(samples, peer, offered));
        if mine.lost > 0 || mine.p99 > theirs.p99 {
            worse.push(format!(
                "at {}: p99 {} vs {}, lost {}",
                rate(offered),
                us(mine.p99),
                us(theirs.p99),
                mine.lost
            ));
        }
    }
    let _ = writeln!(
        md,
        "- latency up to the best peer's capacity ({peer}, {}): {me}'s p99 ≤ {peer}'s with zero loss at every step: {}",
        rate(cap),
        if worse.is_empty() { "met".to_owned() } else { format!("NOT met ({})", worse.join("; ")) }
    );
}
