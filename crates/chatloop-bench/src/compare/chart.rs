//! The comparison's charts, as SVG files drawn with `plotters` (its SVG backend only: text
//! stays text, so the files are small and diff well).
//!
//! | file | what |
//! |---|---|
//! | `fanout.svg` | closed-loop fan-out per shape: a bar per server (median, min–max whisker, window) |
//! | `windows.svg` | closed-loop fan-out against the window, per shape: why each window was picked |
//! | `latency.svg` | p99 against offered load, one curve per server; beside it server CPU-s per million deliveries |
//! | `ramp.svg` | p95 against clients, one curve per server; a cross marks the step that failed |
//!
//! Each server keeps one colour in every chart; the first server (chatloop) is drawn thicker.
//! A hollow point marks a generator-bound step.

use super::plan::{Plan, SLO_P99};
use super::summary::{self, rate, Phase, Sample};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::error::Error;
use std::io;
use std::path::Path;

/// A chart's result; any drawing error becomes an `io::Error` at [`all`].
type Drawn = Result<(), Box<dyn Error>>;

/// One colour per server, in `--servers` order (colour-blind-safe, from the Okabe–Ito set).
const COLOURS: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
];

/// The font of every label.
const FONT: &str = "sans-serif";

/// Draws every chart into `dir`.
pub fn all(plan: &Plan, samples: &[Sample], dir: &Path) -> io::Result<()> {
    let draw = |name: &str, f: &dyn Fn(&Path) -> Drawn| {
        f(&dir.join(name)).map_err(|e| io::Error::other(format!("{name}: {e}")))
    };
    draw("fanout.svg", &|p| fanout(plan, samples, p))?;
    draw("windows.svg", &|p| windows(plan, samples, p))?;
    draw("latency.svg", &|p| latency(plan, samples, p))?;
    draw("ramp.svg", &|p| ramp(plan, samples, p))
}

/// Server `i`'s colour.
fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

/// Server `i`'s line: the first server's is thicker.
fn line(i: usize) -> ShapeStyle {
    colour(i).stroke_width(if i == 0 { 4 } else { 2 })
}

/// `1 round`, `3 rounds`.
pub fn rounds(n: u32) -> String {
    format!("{n} round{}", if n == 1 { "" } else { "s" })
}

/// A y-axis label for deliveries/s.
fn rate_label(v: &f64) -> String {
    rate(*v)
}

/// The legend, top left, on a white box.
fn legend<'a, DB: DrawingBackend + 'a, C: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, C>,
    at: SeriesLabelPosition,
) -> Drawn
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.5))
        .label_font((FONT, 16))
        .draw()?;
    Ok(())
}

/// Bars: median deliveries/s per server, grouped by shape, with min–max whiskers and the
/// window above each bar.
fn fanout(plan: &Plan, samples: &[Sample], path: &Path) -> Drawn {
    let root = SVGBackend::new(path, (1000, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let n = plan.servers.len() as f64;
    let results: Vec<Vec<summary::Fanout>> = plan
        .shapes
        .iter()
        .map(|&shape| {
            plan.servers
                .iter()
                .map(|s| summary::fanout(samples, s, shape))
                .collect()
        })
        .collect();
    let top = results
        .iter()
        .flatten()
        .map(|f| f.range.1)
        .fold(1.0, f64::max)
        * 1.15;
    let groups = plan.shapes.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Closed-loop fan-out, each server at its best window ({} rounds)",
                plan.rounds
            ),
            (FONT, 24),
        )
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..groups, 0.0..top)?;
    let shapes = plan.shapes.clone();
    chart
        .configure_mesh()
        .light_line_style(BLACK.mix(0.04))
        .disable_x_mesh()
        .x_labels(shapes.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            let centred = (x - x.floor() - 0.5).abs() < 1e-6;
            match shapes.get(i) {
                Some(s) if centred => format!("{} clients × {} senders", s.clients, s.senders),
                _ => String::new(),
            }
        })
        .y_label_formatter(&rate_label)
        .y_desc("deliveries/s (median; whisker: min–max)")
        .label_style((FONT, 16))
        .axis_desc_style((FONT, 16))
        .draw()?;
    let width = 0.8 / n;
    for (i, server) in plan.servers.iter().enumerate() {
        let bars = results.iter().enumerate().map(|(g, r)| (g, r[i]));
        let x0 = |g: usize| g as f64 + 0.1 + width * i as f64;
        chart
            .draw_series(bars.clone().map(|(g, f)| {
                Rectangle::new(
                    [(x0(g), 0.0), (x0(g) + width * 0.9, f.median)],
                    colour(i).filled(),
                )
            }))?
            .label(server.as_str())
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 14, y + 6)], colour(i).filled())
            });
        chart.draw_series(bars.clone().filter(|(_, f)| f.rounds > 1).map(|(g, f)| {
            let mid = x0(g) + width * 0.45;
            PathElement::new(
                vec![(mid, f.range.0), (mid, f.range.1)],
                BLACK.stroke_width(2),
            )
        }))?;
        let label =
            TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
        chart.draw_series(bars.map(|(g, f)| {
            let text = match f.window {
                Some(w) => format!("{} w={w}", rate(f.median)),
                None => "no clean window".into(),
            };
            Text::new(
                text,
                (x0(g) + width * 0.45, f.range.1.max(f.median) + top * 0.01),
                label.clone(),
            )
        }))?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present()?;
    Ok(())
}

/// Lines: deliveries/s against the window, one panel per shape.
fn windows(plan: &Plan, samples: &[Sample], path: &Path) -> Drawn {
    let root = SVGBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, plan.shapes.len().max(1)));
    let last = *plan.windows.last().unwrap_or(&64) as f64;
    for (panel, &shape) in panels.iter().zip(&plan.shapes) {
        // A run that delivered nothing is drawn at the bottom of the log axis (2k).
        let runs = |server: &str| -> Vec<(f64, f64)> {
            samples
                .iter()
                .filter(|s| s.phase == Phase::Window && s.server == server && s.shape == shape)
                .filter_map(|s| Some((s.window? as f64, s.report.rate.max(2e3))))
                .collect()
        };
        let top = plan
            .servers
            .iter()
            .flat_map(|s| runs(s))
            .map(|p| p.1)
            .fold(1e5, f64::max);
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("Fan-out by window, {}", shape.name()), (FONT, 22))
            .margin(14)
            .margin_right(34)
            .x_label_area_size(46)
            .y_label_area_size(76)
            .build_cartesian_2d((1.0..last).log_scale(), (1e3..top * 2.0).log_scale())?;
        chart
            .configure_mesh()
            .light_line_style(BLACK.mix(0.04))
            .x_desc("window (messages in flight per sender)")
            .y_desc("deliveries/s (one run)")
            .x_label_formatter(&|w| format!("{w:.0}"))
            .y_label_formatter(&rate_label)
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 15))
            .draw()?;
        for (i, server) in plan.servers.iter().enumerate() {
            let points = runs(server);
            chart
                .draw_series(LineSeries::new(points.clone(), line(i)))?
                .label(server.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line(i)));
            chart.draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 4, colour(i).filled())),
            )?;
        }
        legend(&mut chart, SeriesLabelPosition::LowerLeft)?;
    }
    root.present()?;
    Ok(())
}

/// Lines against offered load: p99 (left, with the SLO) and server CPU-seconds per million
/// deliveries (right).
fn latency(plan: &Plan, samples: &[Sample], path: &Path) -> Drawn {
    let root = SVGBackend::new(path, (1200, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(640);
    let steps: Vec<Vec<summary::Step>> = plan
        .servers
        .iter()
        .map(|s| summary::steps(plan, samples, s))
        .collect();
    // The x axis ends a little past the highest load measured: the sweep stops early.
    let lo = plan.loads.first().copied().unwrap_or(1e4) * 0.8;
    let hi = steps
        .iter()
        .flatten()
        .map(|s| s.offered)
        .fold(lo * 2.0, f64::max)
        * 1.5;
    let p99_ms = |s: &summary::Step| (s.p99 as f64 / 1e3).max(0.01);
    let top = steps.iter().flatten().map(p99_ms).fold(100.0, f64::max) * 2.0;
    let mut chart = ChartBuilder::on(&left)
        .caption(
            format!(
                "p99 latency against offered load ({})",
                plan.latency_shape.name()
            ),
            (FONT, 22),
        )
        .margin(14)
        .margin_right(34)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d((lo..hi).log_scale(), (0.05..top).log_scale())?;
    chart
        .configure_mesh()
        .light_line_style(BLACK.mix(0.04))
        .x_desc("offered deliveries/s")
        .y_desc("p99 latency, ms (median of rounds)")
        .x_label_formatter(&rate_label)
        .y_label_formatter(&|v| format!("{v}"))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 15))
        .draw()?;
    let slo = SLO_P99.as_secs_f64() * 1e3;
    chart.draw_series(LineSeries::new(
        vec![(lo, slo), (hi, slo)],
        BLACK.mix(0.5).stroke_width(1),
    ))?;
    chart.draw_series(std::iter::once(Text::new(
        format!("SLO: p99 {slo} ms"),
        (lo * 1.1, slo * 1.15),
        (FONT, 14).into_font(),
    )))?;
    for (i, server) in plan.servers.iter().enumerate() {
        let points: Vec<(f64, f64)> = steps[i].iter().map(|s| (s.offered, p99_ms(s))).collect();
        chart
            .draw_series(LineSeries::new(points, line(i)))?
            .label(server.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line(i)));
        chart.draw_series(steps[i].iter().map(|s| point(i, (s.offered, p99_ms(s)), s)))?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;

    let cost = |s: &summary::Step| s.cpu_per_million.unwrap_or(0.0).max(1e-3);
    let top = steps.iter().flatten().map(cost).fold(0.01, f64::max) * 2.0;
    let mut chart = ChartBuilder::on(&right)
        .caption("Server CPU per million deliveries", (FONT, 22))
        .margin(14)
        .margin_right(34)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d((lo..hi).log_scale(), (0.005..top).log_scale())?;
    chart
        .configure_mesh()
        .light_line_style(BLACK.mix(0.04))
        .x_desc("offered deliveries/s")
        .y_desc("server CPU-seconds per million")
        .x_label_formatter(&rate_label)
        .y_label_formatter(&|v| format!("{v}"))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 15))
        .draw()?;
    for (i, _) in plan.servers.iter().enumerate() {
        let points: Vec<(f64, f64)> = steps[i].iter().map(|s| (s.offered, cost(s))).collect();
        chart.draw_series(LineSeries::new(points, line(i)))?;
        chart.draw_series(steps[i].iter().map(|s| point(i, (s.offered, cost(s)), s)))?;
    }
    root.present()?;
    Ok(())
}

/// A step's point: filled, hollow where the generator was the limit, a cross where it failed.
fn point<DB: DrawingBackend>(
    i: usize,
    at: (f64, f64),
    s: &summary::Step,
) -> DynElement<'static, DB, (f64, f64)> {
    if !s.passes() {
        Cross::new(at, 7, colour(i).stroke_width(3)).into_dyn()
    } else if s.generator_bound() {
        Circle::new(at, 6, colour(i).stroke_width(2)).into_dyn()
    } else {
        Circle::new(at, 5, colour(i).filled()).into_dyn()
    }
}

/// Lines: p95 against clients in the ramp; a cross marks the failed step.
fn ramp(plan: &Plan, samples: &[Sample], path: &Path) -> Drawn {
    let root = SVGBackend::new(path, (1000, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let runs: Vec<Option<&Sample>> = plan
        .servers
        .iter()
        .map(|s| {
            samples
                .iter()
                .find(|x| x.phase == Phase::Ramp && &x.server == s)
        })
        .collect();
    let p95_ms = |us: u64| (us as f64 / 1e3).max(0.01);
    let top = runs
        .iter()
        .flatten()
        .flat_map(|s| s.report.steps.iter().map(|st| p95_ms(st.latency.p95)))
        .fold(100.0, f64::max)
        * 2.0;
    let r = &plan.ramp;
    // The x axis ends a step past the largest room measured: a ramp stops at its first failure.
    let right = runs
        .iter()
        .flatten()
        .flat_map(|s| s.report.steps.iter().map(|st| st.clients))
        .max()
        .unwrap_or(r.clients)
        .saturating_add(r.step) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "Ramp: {} senders × {} msg/s, +{} clients a step (p95 ≤ {} ms to pass)",
                r.senders,
                r.rate,
                r.step,
                r.limit.as_millis()
            ),
            (FONT, 22),
        )
        .margin(16)
        .x_label_area_size(46)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..right, (0.05..top).log_scale())?;
    chart
        .configure_mesh()
        .light_line_style(BLACK.mix(0.04))
        .x_desc("clients in the room")
        .y_desc("p95 latency, ms")
        .x_label_formatter(&|c| format!("{c:.0}"))
        .y_label_formatter(&|v| format!("{v}"))
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 15))
        .draw()?;
    let limit = r.limit.as_secs_f64() * 1e3;
    chart.draw_series(LineSeries::new(
        vec![(0.0, limit), (right, limit)],
        BLACK.mix(0.5).stroke_width(1),
    ))?;
    for (i, server) in plan.servers.iter().enumerate() {
        let Some(run) = runs[i] else { continue };
        let points: Vec<(f64, f64, bool)> = run
            .report
            .steps
            .iter()
            .map(|st| (st.clients as f64, p95_ms(st.latency.p95), st.passed()))
            .collect();
        chart
            .draw_series(LineSeries::new(points.iter().map(|p| (p.0, p.1)), line(i)))?
            .label(server.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line(i)));
        chart.draw_series(points.iter().map(|&(x, y, passed)| {
            if passed {
                Circle::new((x, y), 5, colour(i).filled()).into_dyn()
            } else {
                Cross::new((x, y), 7, colour(i).stroke_width(3)).into_dyn()
            }
        }))?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
#[path = "chart_tests.rs"]
mod tests;
