//! Results: one row per measurement, printed as an aligned table (with each
//! rate's ratio to the ceilings measured in the same run), then the figures
//! that are not rates (sizes, shares, times against an aim), and optionally
//! both as JSON.

use std::time::Duration;

use serde_json::{Value, json};

/// Which group a row belongs to, for the ratio columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// A ceiling (raw signatures, bare RPC echo).
    Ceiling,
    /// Enrollment through the real server.
    Enrollment,
    /// In-process parts of the server, without the transport.
    Breakdown,
    /// The peers (cfssl, step-ca).
    Peer,
    /// Trust database queries (`Decide`); their echo ratio is to the echo
    /// ceiling measured beside them ([`TRUST_ECHO`]).
    Trust,
}

impl Group {
    fn as_str(self) -> &'static str {
        match self {
            Group::Ceiling => "ceiling",
            Group::Enrollment => "enrollment",
            Group::Breakdown => "breakdown",
            Group::Peer => "peer",
            Group::Trust => "trust",
        }
    }
}

/// Latency percentiles of individual calls, when measured.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
}

impl Latency {
    /// Percentiles of `samples` (sorted in place); `None` when empty.
    pub fn of(samples: &mut [Duration]) -> Option<Self> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Some(Self {
            p50: at(0.50),
            p99: at(0.99),
        })
    }
}

/// One measurement.
#[derive(Debug, Clone)]
pub struct Row {
    /// Stable key, used for ratios and in JSON.
    pub key: &'static str,
    /// What was measured.
    pub label: String,
    /// Group.
    pub group: Group,
    /// Operations completed successfully.
    pub ops: u64,
    /// Operations that failed.
    pub errors: u64,
    /// Wall-clock time of the measurement.
    pub elapsed: Duration,
    /// Per-call latency, when measured.
    pub latency: Option<Latency>,
    /// A remark (e.g. the first error, or why it was skipped).
    pub note: String,
}

impl Row {
    /// Successful operations per second.
    pub fn rate(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.ops as f64 / s } else { 0.0 }
    }
}

/// A row that could not be measured.
pub fn skipped(key: &'static str, label: &str, group: Group, why: String) -> Row {
    Row {
        key,
        label: label.to_owned(),
        group,
        ops: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency: None,
        note: why,
    }
}

/// Key of the all-core sign+verify ceiling (measured first).
pub const SIGN_ALL: &str = "sign_verify_all_cores";
/// Key of the same ceiling measured again at the end of the run.
pub const SIGN_ALL_END: &str = "sign_verify_all_cores_end";
/// Key of the bare RPC echo ceiling.
pub const ECHO: &str = "grpc_echo";
/// Key of the echo ceiling measured beside the trust database queries.
pub const TRUST_ECHO: &str = "trust_echo";

/// The rate of `key`; for [`SIGN_ALL`], the mean of it and its repetition
/// at the end ([`SIGN_ALL_END`]), which brackets the run on a machine whose
/// speed varies.
fn ceiling(rows: &[Row], key: &str) -> Option<f64> {
    let keys: &[&str] = if key == SIGN_ALL {
        &[SIGN_ALL, SIGN_ALL_END]
    } else {
        &[key]
    };
    let rates: Vec<f64> = rows
        .iter()
        .filter(|r| keys.contains(&r.key) && r.ops > 0)
        .map(Row::rate)
        .collect();
    (!rates.is_empty()).then(|| rates.iter().sum::<f64>() / rates.len() as f64)
}

fn ratio(rate: f64, ceiling: Option<f64>) -> Option<f64> {
    ceiling.filter(|c| *c > 0.0).map(|c| rate / c)
}

/// The echo ceilings of a run: the enrollment one and the trust one.
#[derive(Debug, Clone, Copy)]
struct Echoes {
    enrollment: Option<f64>,
    trust: Option<f64>,
}

impl Echoes {
    fn of(rows: &[Row]) -> Self {
        Self {
            enrollment: ceiling(rows, ECHO),
            trust: ceiling(rows, TRUST_ECHO),
        }
    }

    /// The echo ceiling `row` is compared with; none for the other ceilings.
    fn for_row(self, row: &Row) -> Option<f64> {
        if row.group == Group::Trust || row.key == TRUST_ECHO {
            self.trust
        } else if row.group == Group::Ceiling && row.key != ECHO {
            None
        } else {
            self.enrollment
        }
    }
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// The table, as text.
pub fn table(rows: &[Row]) -> String {
    let sign = ceiling(rows, SIGN_ALL);
    let echoes = Echoes::of(rows);
    let header = [
        "measurement",
        "ops",
        "err",
        "secs",
        "ops/s",
        "/sign",
        "/echo",
        "p50 ms",
        "p99 ms",
        "note",
    ];
    let mut cells: Vec<[String; 10]> = Vec::new();
    for r in rows {
        let measured = r.ops > 0 || r.errors > 0;
        let rate = r.rate();
        let pct = |c: Option<f64>| match ratio(rate, c) {
            Some(x) if measured => format!("{:.0}%", x * 100.0),
            _ => "-".to_owned(),
        };
        cells.push([
            r.label.clone(),
            if measured {
                r.ops.to_string()
            } else {
                "-".into()
            },
            if measured {
                r.errors.to_string()
            } else {
                "-".into()
            },
            if measured {
                format!("{:.2}", r.elapsed.as_secs_f64())
            } else {
                "-".into()
            },
            if measured {
                format!("{rate:.0}")
            } else {
                "-".into()
            },
            pct(sign),
            pct(echoes.for_row(r)),
            r.latency
                .map(|l| fmt_ms(l.p50))
                .unwrap_or_else(|| "-".into()),
            r.latency
                .map(|l| fmt_ms(l.p99))
                .unwrap_or_else(|| "-".into()),
            r.note.clone(),
        ]);
    }
    aligned(&header, &cells)
}

/// Columns aligned: the first and last left-aligned, the others (numbers)
/// right-aligned, under a header and a rule.
fn aligned<const N: usize>(header: &[&str; N], cells: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in cells {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cols: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths.iter()).enumerate() {
            let last = i + 1 == cols.len();
            // Text columns left-aligned, numbers right-aligned.
            let text = if i == 0 || last {
                format!("{c:<w$}")
            } else {
                format!("{c:>w$}")
            };
            s.push_str(&text);
            if !last {
                s.push_str("  ");
            }
        }
        out.push_str(s.trim_end());
        out.push('\n');
    };
    line(&header.map(str::to_owned));
    line(&widths.map(|w| "-".repeat(w)));
    for row in cells {
        line(row);
    }
    out
}

/// A figure that is not a rate: a size, a share or a time, with what it is
/// compared with and the aim it is held to.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Stable key, used in JSON.
    pub key: &'static str,
    /// What was measured.
    pub label: String,
    /// The value.
    pub value: f64,
    /// Its unit ("bytes", "s", "%", "MiB", ...).
    pub unit: &'static str,
    /// The aim, as text ("<= 1024"), when there is one.
    pub aim: Option<String>,
    /// Whether the aim is met, when there is one.
    pub met: Option<bool>,
    /// How it was obtained, and what it is compared with.
    pub note: String,
}

impl Figure {
    /// A figure without an aim.
    pub fn new(
        key: &'static str,
        label: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) -> Self {
        Self {
            key,
            label: label.into(),
            value,
            unit,
            aim: None,
            met: None,
            note: String::new(),
        }
    }

    /// Holds the figure to `value <= limit` (`at_most`) or `value >= limit`.
    pub fn aim(mut self, at_most: bool, limit: f64) -> Self {
        let (sign, met) = if at_most {
            ("<=", self.value <= limit)
        } else {
            (">=", self.value >= limit)
        };
        self.aim = Some(format!("{sign} {}", number(limit)));
        self.met = Some(met);
        self
    }

    /// Sets the note.
    pub fn note(mut self, note: impl Into<String>) -> Self {
        self.note = note.into();
        self
    }
}

/// A number with at most 3 significant decimals and thousands separators.
fn number(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        let mut digits = format!("{:.0}", v.abs());
        let mut out = String::new();
        while digits.len() > 3 {
            let tail = digits.split_off(digits.len() - 3);
            out = format!(",{tail}{out}");
        }
        format!("{}{digits}{out}", if v < 0.0 { "-" } else { "" })
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The figures, as text.
pub fn figures_table(figures: &[Figure]) -> String {
    let header = ["figure", "value", "unit", "aim", "met", "note"];
    let cells: Vec<[String; 6]> = figures
        .iter()
        .map(|f| {
            [
                f.label.clone(),
                number(f.value),
                f.unit.to_owned(),
                f.aim.clone().unwrap_or_else(|| "-".into()),
                match f.met {
                    Some(true) => "yes".into(),
                    Some(false) => "NO".into(),
                    None => "-".into(),
                },
                f.note.clone(),
            ]
        })
        .collect();
    aligned(&header, &cells)
}

/// The rows and figures as JSON, with the ratios computed the same way as
/// the table.
pub fn to_json(rows: &[Row], figures: &[Figure], context: Value) -> Value {
    let sign = ceiling(rows, SIGN_ALL);
    let echoes = Echoes::of(rows);
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "key": r.key,
                "label": r.label,
                "group": r.group.as_str(),
                "ops": r.ops,
                "errors": r.errors,
                "seconds": r.elapsed.as_secs_f64(),
                "ops_per_second": r.rate(),
                "ratio_to_sign_verify_all_cores": ratio(r.rate(), sign),
                "ratio_to_grpc_echo": ratio(r.rate(), echoes.for_row(r)),
                "latency_p50_ms": r.latency.map(|l| l.p50.as_secs_f64() * 1e3),
                "latency_p99_ms": r.latency.map(|l| l.p99.as_secs_f64() * 1e3),
                "note": r.note,
            })
        })
        .collect();
    let figures: Vec<Value> = figures
        .iter()
        .map(|f| {
            json!({
                "key": f.key,
                "label": f.label,
                "value": f.value,
                "unit": f.unit,
                "aim": f.aim,
                "met": f.met,
                "note": f.note,
            })
        })
        .collect();
    json!({ "context": context, "results": items, "figures": figures })
}
