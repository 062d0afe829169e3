//! The progress line on stderr: at most once a second, what the run is doing and who is
//! using the CPU.
//!
//! It is how a person watching a long run sees a stall, a wave of errors, or a generator that
//! sits at 100% of its core (then the figures measure the generator, not the server). With
//! `--quiet` nothing is printed; the line never goes to stdout, which holds only the report.

use crate::procfs::CpuMeter;
use std::time::{Duration, Instant};

/// The progress line on stderr, at most once a second.
pub struct Progress {
    /// Print at all.
    enabled: bool,
    /// When the run began.
    start: Instant,
    /// When the next line is due.
    next: Instant,
    /// CPU use since the last line.
    cpu: CpuMeter,
}

impl Progress {
    /// Starts the clock; `server` is `--pid`.
    pub fn new(enabled: bool, server: Option<u32>) -> Progress {
        let now = Instant::now();
        Progress {
            enabled,
            start: now,
            next: now + Duration::from_secs(1),
            cpu: CpuMeter::start(server),
        }
    }

    /// Prints `line()` with the time and CPU use if a second has passed.
    pub fn tick(&mut self, line: impl FnOnce() -> String) {
        let now = Instant::now();
        if !self.enabled || now < self.next {
            return;
        }
        self.next = now + Duration::from_secs(1);
        let cpu = self.cpu.lap();
        let own = cpu.generator;
        let server = match (cpu.server, cpu.server_wait) {
            (Some(c), Some(w)) if w >= 1.0 => format!(", server {c:.0}% (+{w:.0}% waiting)"),
            (Some(c), _) => format!(", server {c:.0}%"),
            _ => String::new(),
        };
        eprintln!(
            "[{:6.1}s] {}  (cpu: generator {own:.0}%{server})",
            now.duration_since(self.start).as_secs_f64(),
            line()
        );
    }
}
