//! Process CPU time over a measurement (user + system, every thread: the
//! load generator and the in-process server together), from
//! `/proc/self/stat`, so a rate can be read as CPU per operation and as
//! cores kept busy.

use std::time::Instant;

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// User + system CPU seconds used so far by process `pid` ("self" for this
/// one); `None` where `/proc` cannot tell.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), from field 3.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

/// CPU and wall time since it was started.
#[derive(Debug, Clone, Copy)]
pub struct CpuClock {
    cpu: Option<f64>,
    wall: Instant,
}

impl CpuClock {
    /// Starts the clock.
    pub fn start() -> Self {
        Self {
            cpu: cpu_seconds("self"),
            wall: Instant::now(),
        }
    }

    /// CPU seconds used since the start (0 where `/proc` cannot tell).
    pub fn cpu_seconds(&self) -> f64 {
        match (self.cpu, cpu_seconds("self")) {
            (Some(before), Some(now)) => now - before,
            _ => 0.0,
        }
    }

    /// "process CPU 1.85 cores, 160 us CPU/op" for `ops` operations since
    /// the start.
    pub fn note(&self, ops: u64) -> String {
        if self.cpu.is_none() {
            return String::new();
        }
        note(self.cpu_seconds(), self.wall.elapsed().as_secs_f64(), ops)
    }
}

/// "process CPU 1.85 cores, 160 us CPU/op": `cpu` seconds over `wall`
/// seconds for `ops` operations.
pub fn note(cpu: f64, wall: f64, ops: u64) -> String {
    let per_op = if ops > 0 {
        format!(", {:.0} us CPU/op", cpu * 1e6 / ops as f64)
    } else {
        String::new()
    };
    format!("process CPU {:.2} cores{per_op}", cpu / wall.max(1e-9))
}

/// `VmRSS` and `VmHWM` (peak) of process `pid`, in KiB.
pub fn rss_kib(pid: &str) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
