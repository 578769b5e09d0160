//! Shared helpers of the ispmux benchmarks (see `perf/run`): hugepages, child processes,
//! medians, and the one result line every benchmark ends with.

pub mod converge;
pub mod flood;
pub mod fwd;
pub mod ovs;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// The `ispmux` release binary beside this benchmark's binary.
pub fn ispmux_bin() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("current exe")?;
    let bin = exe.with_file_name("ispmux");
    if !bin.exists() {
        bail!(
            "{} is missing: run the benchmark through perf/run",
            bin.display()
        );
    }
    Ok(bin)
}

/// The number after `--name` on the command line, else `default`.
pub fn opt(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().skip(1).collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Free hugepage memory in MiB.
pub fn free_hugepage_mb() -> u64 {
    let Ok(info) = std::fs::read_to_string("/proc/meminfo") else {
        return 0;
    };
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field("HugePages_Free:") * field("Hugepagesize:") / 1024
}

/// Makes sure `mb` MiB of hugepages are free, reserving more as root if needed.
/// Returns whether they are there; benchmarks fall back to `--no-huge` (and say so) if not.
pub fn ensure_hugepages(mb: u64) -> bool {
    if free_hugepage_mb() >= mb {
        return true;
    }
    let Ok(cur) = std::fs::read_to_string("/proc/sys/vm/nr_hugepages") else {
        return false;
    };
    let cur: u64 = cur.trim().parse().unwrap_or(0);
    let want = cur + mb.div_ceil(2);
    let _ = std::fs::write("/proc/sys/vm/nr_hugepages", want.to_string());
    free_hugepage_mb() >= mb
}

/// `cmd` rebuilt to run through `chrt -f 10` when `perf/run` was asked for real-time
/// scheduling (`ISPMUX_PERF_RT=1`), the benchmark process itself having been moved back to
/// ordinary scheduling first (once); else `cmd` as it is.
///
/// Why the benchmark itself must not stay real-time: reaping a finished child (`wait4`
/// releasing its `/proc` entries) spun in the kernel for 25 minutes at SCHED_FIFO on this
/// machine, unkillable, holding a core and the benchmark lock; moved to SCHED_OTHER it
/// finished at once. Only the measured processes need the real-time class. Stdio settings
/// are not carried over: the callers set theirs on the command returned.
pub fn measured(cmd: &Command) -> Command {
    let realtime = std::env::var_os("ISPMUX_PERF_RT").is_some_and(|v| v == "1");
    if realtime {
        ordinary_scheduling();
    }
    rebuilt(cmd, realtime)
}

/// Moves this benchmark (every thread; its later threads and children inherit the class)
/// back to ordinary scheduling, once, should `perf/run` have started it real-time. For
/// benchmarks whose processes must share the cores among themselves (several DPDK nodes
/// and their slow paths on 2 CPUs): at one real-time priority a thread that spins never
/// lets another on its CPU run, and a node's start waits for its own lcore thread there.
pub fn ordinary_scheduling() {
    static ORDINARY: std::sync::Once = std::sync::Once::new();
    ORDINARY.call_once(|| {
        let _ = Command::new("chrt")
            .args(["-o", "-a", "-p", "0", &std::process::id().to_string()])
            .stdout(Stdio::null())
            .status();
    });
}

/// `cmd`'s program, arguments, environment changes and directory in a new command, run
/// through `chrt -f 10` when `realtime`.
fn rebuilt(cmd: &Command, realtime: bool) -> Command {
    let mut c = if realtime {
        let mut c = Command::new("chrt");
        c.args(["-f", "10"]).arg(cmd.get_program());
        c
    } else {
        Command::new(cmd.get_program())
    };
    c.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        c.current_dir(d);
    }
    c
}

/// Runs `cmd` for `secs` seconds, then stops it with SIGINT (testpmd with `--stats-period`
/// runs until interrupted; killed if it has not exited 15 s later) and returns its stdout.
/// The child is [`measured`].
pub fn run_then_interrupt(cmd: &mut Command, secs: f64) -> Result<String> {
    let mut child = measured(cmd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut s);
        String::from_utf8_lossy(&s).into_owned()
    });
    std::thread::sleep(Duration::from_secs_f64(secs));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while child.try_wait()?.is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("stdout reader panicked"))
}

/// Runs `cmd` to completion and returns its stdout; fails with its stderr if it fails.
/// The child is [`measured`].
pub fn run_to_end(cmd: &mut Command) -> Result<String> {
    let out = measured(cmd)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Median of `v` (mean of the middle two for an even count); 0 for none.
pub fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return 0.0;
    }
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The last line of every benchmark whose figure is a rate (more is better): ratio =
/// ispmux / anchor.
pub fn result_line(name: &str, ispmux: f64, anchor: f64, unit: &str) -> String {
    let ratio = if anchor > 0.0 { ispmux / anchor } else { 0.0 };
    format!("{name} ratio={ratio:.3} ispmux={ispmux:.3} {unit} anchor={anchor:.3} {unit}")
}

/// The last line of a benchmark whose figure is a time (less is better): ratio = anchor /
/// ispmux, so that here too a ratio of 1 or more means ispmux does no worse.
pub fn result_line_time(name: &str, ispmux: f64, anchor: f64, unit: &str) -> String {
    let ratio = if ispmux > 0.0 { anchor / ispmux } else { 0.0 };
    format!("{name} ratio={ratio:.3} ispmux={ispmux:.3} {unit} anchor={anchor:.3} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }

    #[test]
    fn a_measured_command_keeps_its_program_arguments_environment_and_directory() {
        let mut cmd = Command::new("dpdk-testpmd");
        cmd.args(["-l", "0,1"])
            .env("ISPMUX_LOG", "warn")
            .env_remove("HOME")
            .current_dir("/tmp");
        let args = |c: &Command| c.get_args().map(|a| a.to_owned()).collect::<Vec<_>>();
        let envs = |c: &Command| {
            c.get_envs()
                .map(|(k, v)| (k.to_owned(), v.map(|v| v.to_owned())))
                .collect::<Vec<_>>()
        };
        let plain = rebuilt(&cmd, false);
        assert_eq!(plain.get_program(), "dpdk-testpmd");
        assert_eq!(args(&plain), args(&cmd));
        let rt = rebuilt(&cmd, true);
        assert_eq!(rt.get_program(), "chrt");
        assert_eq!(args(&rt), ["-f", "10", "dpdk-testpmd", "-l", "0,1"]);
        for c in [&plain, &rt] {
            assert_eq!(envs(c), envs(&cmd));
            assert_eq!(c.get_current_dir(), Some(std::path::Path::new("/tmp")));
        }
    }

    #[test]
    fn result_line_has_the_agreed_shape() {
        assert_eq!(
            result_line("fwd-floor", 45.0, 50.0, "Mpps"),
            "fwd-floor ratio=0.900 ispmux=45.000 Mpps anchor=50.000 Mpps"
        );
        assert_eq!(
            result_line_time("ldp-converge", 4.0, 5.0, "s"),
            "ldp-converge ratio=1.250 ispmux=4.000 s anchor=5.000 s"
        );
        assert_eq!(
            result_line_time("ldp-converge", 0.0, 5.0, "s"),
            "ldp-converge ratio=0.000 ispmux=0.000 s anchor=5.000 s"
        );
    }
}
