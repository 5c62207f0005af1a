//! Where the machine's CPU went during a bench run (Linux `/proc`; elsewhere nothing is
//! printed): this process (HTTP clients, the api and query roles, the freshness probe), the
//! pipelines' own process, PostgreSQL's server processes, the rest, and idle time. On a machine
//! of two cores every part takes from the others, so the split says what to make cheaper.
// Floats here are CPU seconds for display, never money.
#![allow(clippy::float_arithmetic)]

use std::time::Instant;

/// Clock ticks per second of `/proc`'s CPU times (`USER_HZ`, fixed at 100 by Linux's ABI).
const TICKS_PER_S: f64 = 100.0;

/// CPU times read at one instant, in seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    at: Instant,
    this: f64,
    pipelines: f64,
    postgres: f64,
    /// Every core's busy, idle and stolen time (`/proc/stat`'s first line).
    busy: f64,
    idle: f64,
    steal: f64,
}

impl Sample {
    /// Reads the times now; `pipelines` is the pipelines' own process, if one runs. None where
    /// `/proc` cannot be read.
    pub(crate) fn take(pipelines: Option<u32>) -> Option<Sample> {
        let (busy, idle, steal) = machine()?;
        Some(Sample {
            at: Instant::now(),
            this: process(std::process::id())?.0,
            pipelines: pipelines.and_then(process).map_or(0.0, |(own, _)| own),
            postgres: postgres(),
            busy,
            idle,
            steal,
        })
    }

    /// One line of where the CPU went from `self` to `later`.
    pub(crate) fn spent_until(&self, later: &Sample) -> String {
        let wall = later.at.duration_since(self.at).as_secs_f64();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let [this, pipelines, postgres, busy, idle, steal] = [
            later.this - self.this,
            later.pipelines - self.pipelines,
            later.postgres - self.postgres,
            later.busy - self.busy,
            later.idle - self.idle,
            later.steal - self.steal,
        ];
        let other = (busy - this - pipelines - postgres).max(0.0);
        let mut parts = vec![format!("this process {this:.1} s")];
        if pipelines > 0.0 {
            parts.push(format!("pipelines' process {pipelines:.1} s"));
        }
        parts.push(format!("PostgreSQL {postgres:.1} s"));
        parts.push(format!("other {other:.1} s"));
        parts.push(format!("idle {idle:.1} s"));
        if steal > 0.0 {
            parts.push(format!("stolen by the hypervisor {steal:.1} s"));
        }
        format!(
            "CPU over {wall:.1} s on {cores} cores ({:.1} core-seconds): {}",
            wall * cores as f64,
            parts.join(", ")
        )
    }
}

/// A process's own CPU seconds (every thread) and those of its children it waited for.
fn process(pid: u32) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command (which may hold spaces) in parentheses: state is field 3,
    // utime 14, stime 15, cutime 16, cstime 17.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let tick = |index: usize| -> Option<f64> {
        fields
            .get(index - 3)?
            .parse::<u64>()
            .ok()
            .map(|t| t as f64 / TICKS_PER_S)
    };
    Some((tick(14)? + tick(15)?, tick(16)? + tick(17)?))
}

/// Every PostgreSQL server process's CPU seconds, with those of its ended children (backends
/// that exited are counted in the postmaster's).
fn postgres() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim_end() == "postgres")
        })
        .filter_map(process)
        .map(|(own, children)| own + children)
        .sum()
}

/// All cores' busy, idle and stolen seconds since boot.
fn machine() -> Option<(f64, f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let (idle, steal) = (ticks.get(3)? + ticks.get(4)?, *ticks.get(7)?);
    let busy = ticks.iter().take(8).sum::<u64>() - idle - steal;
    let seconds = |t: u64| t as f64 / TICKS_PER_S;
    Some((seconds(busy), seconds(idle), seconds(steal)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPU burnt by this process shows as this process's, within the machine's busy time.
    #[test]
    fn cpu_burnt_here_is_counted_as_this_process() {
        let Some(before) = Sample::take(None) else {
            return; // no /proc here
        };
        let started = Instant::now();
        let mut x = 0_u64;
        let mut after = before;
        while after.this - before.this < 0.15 && started.elapsed().as_secs() < 10 {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            after = Sample::take(None).expect("/proc was readable a moment ago");
        }
        let this = after.this - before.this;
        assert!(this >= 0.15, "10 s of spinning counted {this} s");
        assert!(
            after.busy - before.busy >= this - 0.05,
            "the machine's busy time is below this process's"
        );
        let line = before.spent_until(&after);
        assert!(
            line.contains(&format!("this process {this:.1} s")),
            "{line}"
        );
        assert!(!line.contains("pipelines' process"), "{line}");
    }
}
