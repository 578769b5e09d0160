//! What a valid configuration means at run time: EAL arguments and the worker plan.

use crate::model::{Config, Hugepages};
use crate::validate::port_rx_queues;

/// EAL arguments and what they chose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EalPlan {
    /// Arguments for `rte_eal_init` (without the program name).
    pub args: Vec<String>,
    /// Whether hugepages are used.
    pub hugepages: bool,
}

/// One worker lcore's job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerPlan {
    /// EAL lcore id.
    pub lcore: u32,
    /// (port index in `Config::ports`, receive queue) pairs it polls.
    pub rx: Vec<(usize, u16)>,
    /// The transmit queue it owns on every port.
    pub tx_queue: u16,
}

/// Queue counts of one port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortPlan {
    /// Receive queues.
    pub rx_queues: u16,
    /// Transmit queues: one per worker.
    pub tx_queues: u16,
}

/// The run-time plan of a valid configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Worker lcores and their queues.
    pub workers: Vec<WorkerPlan>,
    /// Per port, in `Config::ports` order.
    pub ports: Vec<PortPlan>,
    /// Mbufs for the packet pool.
    pub mbufs: u32,
    /// Whether idle workers sleep.
    pub idle_sleep: bool,
}

/// The canonical PCI name of `d`, if it is a PCI address.
pub(crate) fn pci_name(d: &str) -> Option<String> {
    let full = if d.matches(':').count() == 1 {
        format!("0000:{d}")
    } else {
        d.to_owned()
    };
    let b = full.as_bytes();
    let hex = |r: std::ops::Range<usize>| {
        b.get(r)
            .is_some_and(|s| s.iter().all(u8::is_ascii_hexdigit))
    };
    let ok = full.len() == 12
        && hex(0..4)
        && b[4] == b':'
        && hex(5..7)
        && b[7] == b':'
        && hex(8..10)
        && b[10] == b'.'
        && (b'0'..=b'7').contains(&b[11]);
    ok.then(|| full.to_ascii_lowercase())
}

impl Config {
    /// EAL arguments; `free_hugepage_mb` is what the host has free (None: no hugepages).
    pub fn eal_plan(&self, free_hugepage_mb: Option<u64>) -> Result<EalPlan, String> {
        let e = &self.eal;
        let lcores: Vec<String> = e.lcores.iter().map(u32::to_string).collect();
        // An `--lcores` mapping among the extra arguments (lcore@cpu: more lcores than the
        // host has cores, as the 2-worker tests on a 2-core machine need) replaces `-l`:
        // EAL ignores whichever of the two comes second.
        let mapped = e
            .extra_args
            .iter()
            .any(|a| a == "--lcores" || a.starts_with("--lcores="));
        let mut args = if mapped {
            Vec::new()
        } else {
            vec!["-l".to_owned(), lcores.join(",")]
        };
        if let Some(m) = self.main_lcore() {
            args.extend(["--main-lcore".to_owned(), m.to_string()]);
        }
        let enough = free_hugepage_mb.is_some_and(|f| f >= u64::from(e.memory_mb));
        let huge = match e.hugepages {
            Hugepages::Off => false,
            Hugepages::Auto => enough,
            Hugepages::On if enough => true,
            Hugepages::On => {
                return Err(format!(
                    "eal.hugepages = \"on\" but only {} MiB of hugepages are free and {} MiB are wanted \
                     (reserve more: echo N > /proc/sys/vm/nr_hugepages)",
                    free_hugepage_mb.unwrap_or(0),
                    e.memory_mb
                ))
            }
        };
        if huge {
            // --in-memory needs no hugetlbfs mount and leaves no runtime files behind.
            args.push("--in-memory".to_owned());
        } else {
            // --no-huge refuses --in-memory; --no-shconf lets several instances coexist.
            args.extend(["--no-huge", "--no-shconf"].map(str::to_owned));
        }
        args.extend(["-m".to_owned(), e.memory_mb.to_string()]);
        if let Some(p) = &e.file_prefix {
            args.extend(["--file-prefix".to_owned(), p.clone()]);
        }
        args.push(format!("--log-level=lib.*:{}", e.log_level));
        let mut any_pci = false;
        for p in &self.ports {
            if p.is_pci() {
                any_pci = true;
                args.extend(["-a".to_owned(), p.dpdk_name()]);
            } else {
                args.extend(["--vdev".to_owned(), p.device.trim().to_owned()]);
            }
        }
        if !any_pci {
            args.push("--no-pci".to_owned());
        }
        args.extend(e.extra_args.iter().cloned());
        Ok(EalPlan {
            args,
            hugepages: huge,
        })
    }

    /// Which worker polls which queue, queue counts per port, pool size, idle policy.
    /// `cores` is the number of CPUs the host has.
    pub fn plan(&self, cores: usize) -> Plan {
        let lcores = self.worker_lcores();
        let n = lcores.len().max(1);
        let nworkers = n as u16;
        let ports: Vec<PortPlan> = self
            .ports
            .iter()
            .map(|p| PortPlan {
                rx_queues: port_rx_queues(self, p),
                tx_queues: nworkers,
            })
            .collect();
        let workers = lcores
            .iter()
            .enumerate()
            .map(|(i, &lcore)| {
                let rx = if self.workers.is_empty() {
                    // Automatic: queue q of every port goes to worker q mod N.
                    ports
                        .iter()
                        .enumerate()
                        .flat_map(|(pi, pp)| {
                            (0..pp.rx_queues)
                                .filter(move |q| usize::from(*q) % n == i)
                                .map(move |q| (pi, q))
                        })
                        .collect()
                } else {
                    self.workers[i]
                        .rx
                        .iter()
                        .filter_map(|r| {
                            self.ports
                                .iter()
                                .position(|p| p.name == r.port)
                                .map(|pi| (pi, r.queue))
                        })
                        .collect()
                };
                WorkerPlan {
                    lcore,
                    rx,
                    tx_queue: i as u16,
                }
            })
            .collect();
        let descs: u32 = self
            .ports
            .iter()
            .zip(&ports)
            .map(|(p, pp)| {
                u32::from(p.rx_desc) * u32::from(pp.rx_queues)
                    + u32::from(p.tx_desc) * u32::from(pp.tx_queues)
            })
            .sum();
        // Room for every descriptor, every worker's bursts in flight, the mempool caches.
        let wanted = descs + u32::from(nworkers) * (4 * 256 + 512) + 4096;
        let mbufs = self
            .dataplane
            .mbufs
            .unwrap_or_else(|| wanted.next_power_of_two() - 1);
        let idle_sleep = match self.dataplane.idle_sleep {
            crate::IdleSleep::On => true,
            crate::IdleSleep::Off => false,
            crate::IdleSleep::Auto => cores < self.eal.lcores.len(),
        };
        Plan {
            workers,
            ports,
            mbufs,
            idle_sleep,
        }
    }
}
