//! Tests of the comparison's charts: each is drawn from made-up runs and checked as SVG text.

use super::*;
use crate::compare::plan::Shape;
use crate::report::{Latency, RampStep, Report};

/// A made-up run of `server` in `phase`.
fn sample(
    phase: Phase,
    server: &str,
    shape: Shape,
    at: (Option<u32>, Option<f64>),
    rate: f64,
) -> Sample {
    let latency = Latency {
        p95: (2e9 / rate) as u64,
        p99: (3e9 / rate) as u64,
        ..Latency::default()
    };
    let steps = (1..=3)
        .map(|i| RampStep {
            clients: i * 1000,
            deliveries_per_sec: rate,
            lost: 0,
            unsent: 0,
            max_send_lag_us: 0,
            latency: Latency {
                p95: 5_000 * i as u64,
                ..latency
            },
            cpu: Default::default(),
            failure: (i == 3).then(|| "p95 over --limit".into()),
        })
        .collect();
    Sample {
        phase,
        server: server.into(),
        shape,
        window: at.0,
        offered: at.1,
        round: 1,
        report: Report {
            rate,
            expected: 100,
            received: 100,
            measured_secs: 1.0,
            server_cpu: Some(50.0),
            latency: Some(latency),
            steps,
            ..Report::default()
        },
    }
}

/// Every chart is drawn from made-up runs, as an SVG document.
#[test]
fn every_chart_is_drawn_as_svg() {
    let dir = std::env::temp_dir().join(format!("chatloop-charts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut plan = Plan::quick(vec!["chatloop".into(), "peer".into()], "x {port}".into());
    plan.out = dir.clone();
    let mut samples = Vec::new();
    for (i, server) in ["chatloop", "peer"].into_iter().enumerate() {
        let speed = 1e6 / (i + 1) as f64;
        for &shape in &plan.shapes {
            for &w in &plan.windows {
                samples.push(sample(
                    Phase::Window,
                    server,
                    shape,
                    (Some(w), None),
                    speed * w as f64,
                ));
                samples.push(sample(Phase::Fanout, server, shape, (Some(w), None), speed));
            }
        }
        for &load in &plan.loads {
            samples.push(sample(
                Phase::Latency,
                server,
                plan.latency_shape,
                (None, Some(load)),
                load,
            ));
        }
        samples.push(sample(
            Phase::Ramp,
            server,
            plan.latency_shape,
            (None, None),
            speed,
        ));
    }
    all(&plan, &samples, &dir).unwrap();
    for name in ["fanout.svg", "windows.svg", "latency.svg", "ramp.svg"] {
        let svg = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("chatloop"),
            "{name}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
