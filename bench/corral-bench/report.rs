//! The results of a run: merged counts turned into the human report (wrk
//! style) or one JSON object, plus the histogram codec shared with `plot`.

use crate::cli::LoadMode;
use crate::plan::Plan;
use crate::stats::{ErrorKind, Stats};
use crate::tls::Negotiated;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde_json::{Value, json};
use std::fmt::Write;
use std::time::Duration;

/// The percentiles reported, as (JSON key, label, quantile).
pub(crate) const PERCENTILES: [(&str, &str, f64); 5] = [
    ("p50", "50%", 0.5),
    ("p90", "90%", 0.9),
    ("p99", "99%", 0.99),
    ("p999", "99.9%", 0.999),
    ("p9999", "99.99%", 0.9999),
];

/// A finished run.
pub(crate) struct Summary<'a> {
    /// What was run.
    pub plan: &'a Plan,
    /// All threads' counts, merged.
    pub stats: Stats,
    /// The measured period (the longest over threads).
    pub elapsed: Duration,
    /// With --tls: what a handshake negotiated.
    pub negotiated: Option<Negotiated>,
}

impl Summary<'_> {
    fn secs(&self) -> f64 {
        self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Successful requests per second.
    pub(crate) fn rps(&self) -> f64 {
        self.stats.requests as f64 / self.secs()
    }

    /// Open loop: complete responses (any status) per second.
    pub(crate) fn achieved_rate(&self) -> Option<f64> {
        self.plan.rate.map(|_| {
            (self.stats.requests + self.stats.errors_of(ErrorKind::Status)) as f64 / self.secs()
        })
    }

    /// Bulk: payload that completed the round trip, in Gbit/s.
    pub(crate) fn gbit_s(&self) -> Option<f64> {
        (self.plan.mode == LoadMode::Bulk)
            .then(|| self.stats.bytes as f64 * 8.0 / self.secs() / 1e9)
    }

    fn latency(&self) -> Vec<(&'static str, &'static str, u64)> {
        let h = &self.stats.hist;
        PERCENTILES
            .iter()
            .map(|&(key, label, q)| {
                (
                    key,
                    label,
                    if h.is_empty() {
                        0
                    } else {
                        h.value_at_quantile(q)
                    },
                )
            })
            .collect()
    }

    fn mean(&self) -> f64 {
        if self.stats.hist.is_empty() {
            0.0
        } else {
            self.stats.hist.mean()
        }
    }

    /// The JSON object printed by `--json`.
    pub(crate) fn to_json(&self) -> Value {
        let mut latency = serde_json::Map::new();
        for (key, _, v) in self.latency() {
            latency.insert(key.into(), json!(v));
        }
        latency.insert("max".into(), json!(self.stats.hist.max()));
        latency.insert("mean".into(), json!(round3(self.mean())));
        let mut errors = serde_json::Map::new();
        for kind in ErrorKind::ALL {
            errors.insert(kind.name().into(), json!(self.stats.errors_of(kind)));
        }
        let targets: Vec<&str> = self.plan.targets.iter().map(|t| t.text.as_str()).collect();
        json!({
            "tool": "corral-bench",
            "version": env!("CARGO_PKG_VERSION"),
            "label": self.plan.label,
            "mode": self.plan.mode.name(),
            "target": self.plan.target_text(),
            "targets": targets,
            "connections": self.plan.connections,
            "threads": self.plan.threads,
            "duration_s": (self.elapsed.as_secs_f64() * 1e6).round() / 1e6,
            "warmup_s": round3(self.plan.warmup.as_secs_f64()),
            "rate": self.plan.rate,
            "achieved_rate": self.achieved_rate().map(round3),
            "requests": self.stats.requests,
            "rps": round3(self.rps()),
            "bytes": self.stats.bytes,
            "mib_s": round3(self.stats.bytes as f64 / self.secs() / (1 << 20) as f64),
            "gbit_s": self.gbit_s().map(round3),
            "latency_us": latency,
            "errors": errors,
            "errors_total": self.stats.errors_total(),
            "tls": self.tls_json(),
            "histogram": encode_histogram(&self.stats.hist),
        })
    }

    /// The `tls` object of the JSON output (null without --tls).
    fn tls_json(&self) -> Value {
        let Some(t) = &self.plan.tls else {
            return Value::Null;
        };
        let negotiated = self
            .negotiated
            .as_ref()
            .map(|n| json!({"version": n.version, "cipher_suite": n.cipher_suite, "alpn": n.alpn}));
        json!({
            "version": t.version_name(),
            "provider": t.provider.name(),
            "sni": t.sni,
            "alpn": t.alpn,
            "suite": t.suite,
            "handshakes": self.stats.handshakes,
            "handshakes_per_s": round3(self.stats.handshakes as f64 / self.secs()),
            "negotiated": negotiated,
        })
    }

    /// The human report.
    pub(crate) fn human(&self) -> String {
        let p = self.plan;
        let mut o = String::new();
        let pacing = match p.rate {
            Some(r) => format!("open loop at {r:.0} req/s"),
            None if p.mode == LoadMode::Bulk => {
                format!("{} per connection", bytes_text(p.bulk_bytes))
            }
            None => "closed loop".into(),
        };
        let _ = writeln!(
            o,
            "corral-bench {} ({pacing}) @ {}",
            p.mode.name(),
            p.target_text()
        );
        let warm = if p.warmup.is_zero() {
            String::new()
        } else {
            format!(", after a {:.2}s warm-up", p.warmup.as_secs_f64())
        };
        let _ = writeln!(
            o,
            "  {} thread(s), {} connection(s), {:.2}s measured{warm}",
            p.threads,
            p.connections,
            self.elapsed.as_secs_f64()
        );
        let what = if p.mode == LoadMode::Bulk {
            "Completion time per connection"
        } else if p.rate.is_some() {
            "Latency (from each request's due time)"
        } else {
            "Latency"
        };
        let _ = writeln!(o, "  {what}");
        for (_, label, v) in self.latency() {
            let _ = writeln!(o, "    {label:>7}  {:>10}", time_text(v as f64));
        }
        let _ = writeln!(
            o,
            "    {:>7}  {:>10}",
            "max",
            time_text(self.stats.hist.max() as f64)
        );
        let _ = writeln!(o, "    {:>7}  {:>10}", "mean", time_text(self.mean()));
        let unit = if p.mode == LoadMode::Bulk {
            "transfers"
        } else {
            "requests"
        };
        let _ = writeln!(
            o,
            "  {} {unit} in {:.2}s, {} read",
            self.stats.requests,
            self.elapsed.as_secs_f64(),
            bytes_text(self.stats.bytes)
        );
        if p.mode != LoadMode::Bulk {
            let _ = writeln!(o, "Requests/sec: {:>12.2}", self.rps());
        }
        let _ = writeln!(
            o,
            "Transfer/sec: {:>12}",
            bytes_text((self.stats.bytes as f64 / self.secs()) as u64)
        );
        if let Some(t) = &p.tls {
            let got = match &self.negotiated {
                Some(n) => format!(
                    "negotiated {} {}{}",
                    n.version,
                    n.cipher_suite,
                    n.alpn
                        .as_ref()
                        .map(|a| format!(" ALPN {a}"))
                        .unwrap_or_default()
                ),
                None => "no handshake completed".into(),
            };
            let _ = writeln!(
                o,
                "TLS:          {} offered ({} client), {got}; {} handshakes, {:.2}/s",
                t.version_name(),
                t.provider.name(),
                self.stats.handshakes,
                self.stats.handshakes as f64 / self.secs()
            );
        }
        if let (Some(asked), Some(got)) = (p.rate, self.achieved_rate()) {
            let _ = writeln!(o, "Rate:         asked {asked:.2}/s, achieved {got:.2}/s");
        }
        if let Some(g) = self.gbit_s() {
            let _ = writeln!(
                o,
                "Throughput:   {g:.3} Gbit/s (payload bytes that completed the round trip x 8 / elapsed time)"
            );
        }
        let errors: Vec<String> = ErrorKind::ALL
            .iter()
            .filter(|k| self.stats.errors_of(**k) > 0)
            .map(|k| format!("{} {}", k.name(), self.stats.errors_of(*k)))
            .collect();
        if errors.is_empty() {
            let _ = writeln!(o, "Errors:       none");
        } else {
            let _ = writeln!(o, "Errors:       {}", errors.join(", "));
        }
        o
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A time in microseconds as wrk writes it: 2 decimals, in us, ms or s.
pub(crate) fn time_text(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.2}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

/// A byte count with a binary unit.
pub(crate) fn bytes_text(b: u64) -> String {
    let b = b as f64;
    if b < 1024.0 {
        format!("{b:.0}B")
    } else if b < (1 << 20) as f64 {
        format!("{:.2}KiB", b / 1024.0)
    } else if b < (1 << 30) as f64 {
        format!("{:.2}MiB", b / (1 << 20) as f64)
    } else {
        format!("{:.2}GiB", b / (1 << 30) as f64)
    }
}

/// A histogram in HdrHistogram's V2 encoding, base64.
pub(crate) fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut bytes)
        .expect("serializing into memory does not fail");
    STANDARD.encode(bytes)
}

/// The histogram of [`encode_histogram`] back.
pub(crate) fn decode_histogram(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("not a V2 HdrHistogram: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts() {
        assert_eq!(time_text(512.0), "512.00us");
        assert_eq!(time_text(1234.0), "1.23ms");
        assert_eq!(time_text(2_500_000.0), "2.50s");
        assert_eq!(bytes_text(100), "100B");
        assert_eq!(bytes_text(3 << 20), "3.00MiB");
    }

    #[test]
    fn histogram_round_trip() {
        let mut h = crate::stats::new_histogram();
        for v in [1, 10, 100, 1000, 59_000_000] {
            h.record(v).unwrap();
        }
        let back = decode_histogram(&encode_histogram(&h)).unwrap();
        assert_eq!(back.len(), 5);
        assert_eq!(back.max(), h.max());
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
    }
}
