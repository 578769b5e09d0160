//! How long the Prometheus encoding of a mid-size gateway's counters takes: 64 ISPs,
//! 4 ports, 2 workers, a RADIUS proxy of 20 client SPs and 22 home servers. Prints the text's size and the
//! mean wall and on-core time per encoding in both formats; with `--print FORMAT` (`openmetrics` or
//! `prometheus`) prints the text instead, to feed `promtool check metrics`.

use std::time::Instant;

use ispmux_gateway::metrics::{example_stats, Exposition, Metrics};

fn main() {
    let stats = example_stats(64, 4, 2, 20);
    let mut m = Metrics::default();
    let args: Vec<String> = std::env::args().collect();
    if let Some(f) = args
        .iter()
        .position(|a| a == "--print")
        .and_then(|i| args.get(i + 1))
    {
        let format = match f.as_str() {
            "prometheus" => Exposition::Prometheus,
            _ => Exposition::OpenMetrics,
        };
        print!("{}", m.encode(&stats, None, format));
        return;
    }
    for format in [Exposition::OpenMetrics, Exposition::Prometheus] {
        let n = 200u32;
        let mut bytes = 0;
        let (t0, cpu0) = (Instant::now(), on_cpu_ns());
        for _ in 0..n {
            bytes = m.encode(&stats, None, format).len();
        }
        let wall = t0.elapsed() / n;
        // On a shared machine the wall time is mostly waiting for the core: the thread's own
        // time on it is the cost.
        let cpu = on_cpu_ns().zip(cpu0).map(|(b, a)| (b - a) / u64::from(n));
        println!(
            "{format:?}: {bytes} bytes, {wall:?} wall and {} µs on the core per encoding",
            cpu.map_or("?".into(), |ns| format!("{:.0}", ns as f64 / 1e3))
        );
    }
}

/// Nanoseconds the calling thread has run on a core (`/proc/thread-self/schedstat`).
fn on_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
