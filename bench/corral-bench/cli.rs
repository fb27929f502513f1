//! The command line: `run`, `serve` and `plot`, and the parsers that turn
//! flag values (durations, sizes, CPU lists, headers) into typed values
//! with an error that names what was expected.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// corral-bench: latency benchmarking for corral and its peers.
#[derive(Parser, Debug)]
#[command(
    name = "corral-bench",
    version,
    about = "Latency benchmarking: a thread-per-core load generator (closed or open loop, with coordinated-omission correction), a static backend, and percentile plots"
)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once per process: the size difference between variants costs
// nothing worth a Box.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Send load to one or more targets and report throughput, latency
    /// percentiles and errors.
    Run(RunArgs),
    /// Run a minimal, fast backend (HTTP, fixed-size TCP answers, or echo)
    /// until SIGTERM or SIGINT.
    Serve(ServeArgs),
    /// Draw the latency-by-percentile curves of one or more `run --json`
    /// outputs as SVG (or an HTML page holding the SVG).
    Plot(PlotArgs),
}

/// How a load run talks to its targets.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoadMode {
    /// HTTP/1.1 keep-alive, one request outstanding per connection.
    Http,
    /// A new connection per HTTP request (connect time counts in latency).
    HttpClose,
    /// Raw TCP: send --request-size bytes, read --response-size bytes back.
    Tcp,
    /// Stream --bulk-bytes to an echo server and read them all back.
    Bulk,
}

impl LoadMode {
    /// The mode's name as written on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            LoadMode::Http => "http",
            LoadMode::HttpClose => "http-close",
            LoadMode::Tcp => "tcp",
            LoadMode::Bulk => "bulk",
        }
    }
}

/// A TLS version the client offers.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TlsVersion {
    /// TLS 1.2 only.
    #[value(name = "1.2")]
    V12,
    /// TLS 1.3 only.
    #[value(name = "1.3")]
    V13,
}

/// The rustls crypto provider of the load generator's TLS client.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TlsProvider {
    /// aws-lc-rs (AWS-LC): the default, the cheaper of the two per handshake.
    #[value(name = "aws-lc-rs")]
    AwsLcRs,
    /// ring.
    Ring,
}

impl TlsProvider {
    /// The provider's name as written on the command line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TlsProvider::AwsLcRs => "aws-lc-rs",
            TlsProvider::Ring => "ring",
        }
    }
}

/// `corral-bench run`.
#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// Where to send load, as host:port; with several, connections are
    /// given targets round-robin.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Protocol: http (keep-alive), http-close, tcp or bulk.
    #[arg(long, value_enum, default_value = "http")]
    pub mode: LoadMode,

    /// Connections in total, split evenly over the threads.
    #[arg(short, long, default_value_t = 50)]
    pub connections: usize,

    /// Threads, each with its own io_uring executor.
    #[arg(short, long, default_value_t = 1)]
    pub threads: usize,

    /// CPUs to pin the threads to, e.g. `1`, `0,2`, `0-3` (thread i on the
    /// i-th CPU of the list, wrapping); default: no pinning.
    #[arg(long, value_parser = parse_cpus)]
    pub cpus: Option<CpuList>,

    /// How long to measure, after the warm-up (e.g. 10s, 500ms, 2m).
    #[arg(short, long, default_value = "10s", value_parser = parse_positive_duration)]
    pub duration: Duration,

    /// Load sent before measuring; its results are discarded (0 for none).
    /// Not used in bulk mode.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub warmup: Duration,

    /// How long one request may take once sent (connect included in
    /// http-close mode); an expired request counts as a `timeout` error and
    /// its connection is reopened. In bulk mode: the longest time without
    /// progress.
    #[arg(long, default_value = "5s", value_parser = parse_positive_duration)]
    pub timeout: Duration,

    /// Open loop: requests per second in total, on a fixed timeline;
    /// latency is measured from when each request was due. Without it,
    /// closed loop: each connection sends as soon as its previous response
    /// is complete.
    #[arg(short = 'R', long, value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// HTTP method.
    #[arg(long, default_value = "GET")]
    pub method: String,

    /// HTTP request target (path and query).
    #[arg(long, default_value = "/")]
    pub path: String,

    /// An extra request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,

    /// Request body, sent with Content-Length.
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,

    /// A file whose content is the request body.
    #[arg(long, value_name = "PATH")]
    pub body_file: Option<PathBuf>,

    /// tcp mode: bytes per request (k/m/g suffixes).
    #[arg(long, default_value = "64", value_parser = parse_size)]
    pub request_size: u64,

    /// tcp mode: bytes per response (k/m/g suffixes).
    #[arg(long, default_value = "64", value_parser = parse_size)]
    pub response_size: u64,

    /// bulk mode: bytes each connection sends and reads back (k/m/g
    /// suffixes, powers of 1024).
    #[arg(long, default_value = "1g", value_parser = parse_size)]
    pub bulk_bytes: u64,

    /// http and http-close modes: speak TLS to the targets (rustls). The
    /// client is built for benchmarks only: it accepts any certificate and
    /// any handshake signature, never resumes a session (every connection
    /// is a full handshake) and offers only X25519 for the key exchange.
    #[arg(long)]
    pub tls: bool,

    /// With --tls: the server name sent in the handshake (SNI). Default:
    /// the target's host when it is a name; none when it is an IP address.
    #[arg(long, value_name = "NAME", requires = "tls")]
    pub sni: Option<String>,

    /// With --tls: the TLS version offered, 1.2 or 1.3 [default: 1.3].
    #[arg(long, value_enum, value_name = "VERSION", requires = "tls")]
    pub tls_version: Option<TlsVersion>,

    /// With --tls: the ALPN protocol offered (http/1.1 is the only one
    /// these modes speak); default: no ALPN extension.
    #[arg(long, value_name = "PROTOCOL", requires = "tls", value_parser = ["http/1.1"])]
    pub alpn: Option<String>,

    /// With --tls: offer only this cipher suite, by its rustls name (e.g.
    /// TLS13_AES_128_GCM_SHA256); default: the provider's default list
    /// (TLS 1.3: AES-256-GCM, AES-128-GCM, ChaCha20-Poly1305, in that order).
    #[arg(long, value_name = "NAME", requires = "tls")]
    pub tls_suite: Option<String>,

    /// With --tls: the rustls crypto provider of the client.
    #[arg(long, value_enum, default_value = "aws-lc-rs", value_name = "PROVIDER")]
    pub tls_provider: TlsProvider,

    /// Print the results as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,

    /// Write the full percentile distribution in HdrHistogram's .hgrm text
    /// format (milliseconds) to this file.
    #[arg(long, value_name = "PATH")]
    pub hgrm: Option<PathBuf>,

    /// Draw this run's latency-by-percentile curve to this .svg or .html
    /// file.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,

    /// A name for this run, kept in the JSON output and used by `plot`.
    #[arg(long)]
    pub label: Option<String>,
}

/// `corral-bench serve`.
#[derive(Args, Debug)]
#[command(subcommand_value_name = "MODE", subcommand_help_heading = "Modes")]
pub(crate) struct ServeArgs {
    /// Address to listen on, host:port (port 0 picks a free one; the
    /// `listening on` line gives it).
    #[arg(long)]
    pub listen: String,

    /// Threads, each with its own executor and SO_REUSEPORT listener.
    #[arg(short, long, default_value_t = 1, global = true)]
    pub threads: usize,

    /// CPUs to pin the threads to, e.g. `0`, `0-1`; default: no pinning.
    #[arg(long, value_parser = parse_cpus, global = true)]
    pub cpus: Option<CpuList>,

    /// On exit, print `served N requests on M connections` on stderr.
    #[arg(long, global = true)]
    pub stats: bool,

    /// What to serve.
    #[command(subcommand)]
    pub mode: ServeMode,
}

/// What `serve` answers.
#[derive(Subcommand, Debug, Clone)]
pub(crate) enum ServeMode {
    /// Keep-alive HTTP/1.1: every request gets the same response.
    Http {
        /// Response body size in bytes (k/m/g suffixes); the default 13 is
        /// "hello world!\n".
        #[arg(long, default_value = "13", value_parser = parse_size_or_zero)]
        body_size: u64,
        /// Response status code.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(200..=599))]
        status: u16,
    },
    /// Fixed-size answers: after each --request-size bytes read, write
    /// --response-size bytes.
    Tcp {
        /// Bytes per request.
        #[arg(long, default_value = "64", value_parser = parse_size)]
        request_size: u64,
        /// Bytes per response.
        #[arg(long, default_value = "64", value_parser = parse_size)]
        response_size: u64,
    },
    /// Echo every byte back.
    Echo,
}

/// `corral-bench plot`.
#[derive(Args, Debug)]
pub(crate) struct PlotArgs {
    /// Output file: .svg, or .html for a page holding the SVG.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,

    /// JSON files written by `corral-bench run --json`.
    #[arg(required = true, value_name = "RUN.json")]
    pub runs: Vec<PathBuf>,

    /// Legend label of each run, in order (default: the run's --label,
    /// else the file name).
    #[arg(long = "label", value_name = "NAME")]
    pub labels: Vec<String>,

    /// Chart title.
    #[arg(long, default_value = "Latency by percentile")]
    pub title: String,
}

/// Parses a duration: a number with a unit (`us`, `ms`, `s`, `m`, `h`),
/// or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration such as 10s, 500ms, 1.5s or 2m, got `{text}`");
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| bad())?;
    let scale = match unit {
        "" | "s" | "sec" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let secs = value * scale;
    if !secs.is_finite() || secs > 1e9 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Like [`parse_duration`], refusing zero.
pub(crate) fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d.is_zero() {
        return Err(format!("expected a duration above zero, got `{text}`"));
    }
    Ok(d)
}

/// Parses a byte count with an optional k/m/g suffix (powers of 1024),
/// at least 1.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let n = parse_size_or_zero(text)?;
    if n == 0 {
        return Err(format!("expected a size of at least 1 byte, got `{text}`"));
    }
    Ok(n)
}

/// Parses a byte count with an optional k/m/g suffix (powers of 1024).
pub(crate) fn parse_size_or_zero(text: &str) -> Result<u64, String> {
    let bad = || format!("expected a byte count such as 64, 16k, 512m or 2g, got `{text}`");
    let t = text.trim().to_ascii_lowercase();
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(&t);
    let (num, shift) = match t.as_bytes().last() {
        Some(b'k') => (&t[..t.len() - 1], 10),
        Some(b'm') => (&t[..t.len() - 1], 20),
        Some(b'g') => (&t[..t.len() - 1], 30),
        _ => (t, 0),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).ok_or_else(bad)
}

/// A `--cpus` list, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CpuList(pub Vec<usize>);

/// Parses a CPU list: `1`, `0,2`, `0-3`, `0-1,4`.
pub(crate) fn parse_cpus(text: &str) -> Result<CpuList, String> {
    let bad = || format!("expected a CPU list such as 1, 0,2 or 0-3, got `{text}`");
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        if let Some((a, b)) = part.split_once('-') {
            let a: usize = a.trim().parse().map_err(|_| bad())?;
            let b: usize = b.trim().parse().map_err(|_| bad())?;
            if b < a || b - a > 4096 {
                return Err(bad());
            }
            cpus.extend(a..=b);
        } else {
            cpus.push(part.parse().map_err(|_| bad())?);
        }
    }
    Ok(CpuList(cpus))
}

/// Parses a request rate (requests per second, above zero).
pub(crate) fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "expected requests per second above zero, such as 2000, got `{text}`"
        )),
    }
}

/// Parses `Name: value`.
pub(crate) fn parse_header(text: &str) -> Result<(String, String), String> {
    let Some((name, value)) = text.split_once(':') else {
        return Err(format!("expected `Name: value`, got `{text}`"));
    };
    let name = name.trim();
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!(
            "expected `Name: value` with a header name of letters, digits and -, got `{text}`"
        ));
    }
    let value = value.trim();
    if value.contains(['\r', '\n']) {
        return Err(format!("a header value cannot hold a line break: `{text}`"));
    }
    Ok((name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        assert!(parse_duration("10x").unwrap_err().contains("10x"));
        assert!(parse_positive_duration("0s").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64").unwrap(), 64);
        assert_eq!(parse_size("16k").unwrap(), 16 << 10);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("2gib").unwrap(), 2 << 30);
        assert!(parse_size("0").is_err());
        assert!(parse_size("x").unwrap_err().contains("`x`"));
    }

    #[test]
    fn cpus_and_headers() {
        assert_eq!(parse_cpus("0-2,5").unwrap().0, vec![0, 1, 2, 5]);
        assert!(parse_cpus("2-1").is_err());
        assert_eq!(
            parse_header("X-A:  b c ").unwrap(),
            ("X-A".to_string(), "b c".to_string())
        );
        assert!(parse_header("nocolon").is_err());
        assert!(parse_header("bad name: x").is_err());
    }
}
