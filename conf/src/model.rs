//! The configuration file as serde types. Unknown keys are errors everywhere.

use serde::Deserialize;

/// A whole ispmux configuration file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// DPDK Environment Abstraction Layer.
    #[serde(default)]
    pub eal: Eal,
    /// Ethernet ports, by ispmux name and DPDK device.
    #[serde(default, rename = "port")]
    pub ports: Vec<Port>,
    /// The fast path.
    #[serde(default)]
    pub dataplane: Dataplane,
    /// Explicit worker to queue assignment; absent means automatic.
    #[serde(default, rename = "worker")]
    pub workers: Vec<Worker>,
    /// Control socket and operator-facing settings.
    #[serde(default)]
    pub control: Control,
    /// What the fast-path tables start with (ISPs, labels, ILM, subscribers), ports by
    /// name; the slow path changes them later.
    #[serde(default)]
    pub tables: crate::tables::TablesConfig,
    /// The DHCP logon proxy (seeds 000/001); off when absent.
    pub dhcp: Option<crate::dhcp::DhcpConfig>,
    /// ICMP errors for what the fast path cannot forward, and their rate limit.
    #[serde(default)]
    pub icmp: crate::icmp::IcmpConfig,
    /// Label distribution by LDP on the routed ports' twins; off when absent.
    #[serde(default)]
    pub ldp: Option<crate::ldp::LdpConfig>,
    /// The durable store shared by the slow-path components (RADIUS usage records, the DHCP
    /// registry).
    #[serde(default)]
    pub store: Store,
    /// The capacity-sharing RADIUS proxy; absent: not run.
    #[serde(default)]
    pub radius: Option<crate::radius::RadiusConfig>,
    /// The provisioning API; absent: not served.
    #[serde(default)]
    pub api: Option<crate::api::ApiConfig>,
}

/// Where the slow path keeps what must survive a restart.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Store {
    /// The SQLite database; its directory is created when missing.
    pub path: String,
}

/// Where the store lives unless `[store] path` says otherwise.
pub const DEFAULT_STORE_PATH: &str = "/var/lib/ispmux/ispmux.db";

impl Default for Store {
    fn default() -> Self {
        Store {
            path: DEFAULT_STORE_PATH.to_owned(),
        }
    }
}

/// What a configuration file is loaded for: the checks differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// `ispmux run` / `check`: the gateway with its ports, and `[radius]` when present.
    Gateway,
    /// `ispmux radius-proxy`: only `[radius]` (required) and `[store]` matter; the other
    /// tables of the same file are parsed but not checked, so one file serves both.
    RadiusProxy,
}

/// Whether to use hugepages.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Hugepages {
    /// Use them when enough are free, else run without (`--no-huge`).
    #[default]
    Auto,
    /// Require them (`--in-memory`); fail when too few are free.
    On,
    /// Never (`--no-huge --no-shconf`).
    Off,
}

/// EAL options.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Eal {
    /// Lcores EAL runs on (`-l`); the first is the main lcore unless `main_lcore` says.
    pub lcores: Vec<u32>,
    /// The control lcore; not used for forwarding.
    pub main_lcore: Option<u32>,
    /// Memory to reserve in MiB (`-m`).
    pub memory_mb: u32,
    /// Hugepage use.
    pub hugepages: Hugepages,
    /// Runtime directory prefix (`--file-prefix`), needed for several instances on one host.
    pub file_prefix: Option<String>,
    /// EAL log level (`--log-level`).
    pub log_level: String,
    /// Further EAL arguments, passed as they are.
    pub extra_args: Vec<String>,
}

impl Default for Eal {
    fn default() -> Self {
        Eal {
            lcores: vec![0, 1],
            main_lcore: None,
            memory_mb: 512,
            hugepages: Hugepages::Auto,
            file_prefix: None,
            log_level: "warning".to_owned(),
            extra_args: Vec::new(),
        }
    }
}

/// One Ethernet port.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// ispmux's name for the port (used by workers, roles and tables).
    pub name: String,
    /// DPDK device: a virtual device with its arguments (`net_null0`,
    /// `net_af_packet0,iface=veth0`) or a PCI address (`0000:01:00.0`).
    pub device: String,
    /// Receive queues; default: one per worker polling the port.
    pub rx_queues: Option<u16>,
    /// Receive descriptors per queue.
    #[serde(default = "default_desc")]
    pub rx_desc: u16,
    /// Transmit descriptors per queue.
    #[serde(default = "default_desc")]
    pub tx_desc: u16,
    /// Accept frames to any destination MAC.
    #[serde(default = "yes")]
    pub promiscuous: bool,
    /// MTU to set on the device.
    pub mtu: Option<u16>,
    /// What the port faces, for `pipeline = "node"`: access, core or handoff.
    #[serde(default, deserialize_with = "crate::de::opt_port_role")]
    pub role: Option<ispmux_dataplane::PortRole>,
    /// The port's MAC address as the pipelines use it; default: the device's own.
    #[serde(default, deserialize_with = "crate::de::opt_mac")]
    pub mac: Option<ispmux_dataplane::wire::MacAddr>,
    /// The port's own IPv4 interface address with its subnet's prefix length
    /// (`"198.18.9.1/30"`; a bare address is a /32), e.g. the tailend's address on an ISP
    /// hand-off link, the next hop of the ISP's route to its subscribers. It is the address
    /// of the port's kernel twin, whose kernel answers ARP and ping for it.
    #[serde(default, deserialize_with = "crate::de::opt_if_addr")]
    pub address: Option<crate::IfAddr>,
    /// The name of the port's kernel twin (a TAP interface in the gateway's network
    /// namespace), for core and hand-off ports of a node pipeline; default
    /// `ispmux-<port name>`. At most 15 characters (Linux's IFNAMSIZ).
    pub twin: Option<String>,
    /// Core ports: penultimate-hop popping interop. Unlabelled IPv4 received here that is not
    /// for the gateway is handled as if it had arrived with this label (its `[[tables.ilm]]`
    /// action, e.g. `pop_handoff`), as from a neighbour that popped the last label (implicit
    /// null, RFC 3032). Absent: such frames are dropped as `not_mpls`.
    pub implicit_null_label: Option<u32>,
    /// Prefixes whose addresses this port answers ARP for (`"198.18.1.0/24"`): an ISP's
    /// subscriber pool on its hand-off port, so the ISP router needs no static neighbours.
    #[serde(default, deserialize_with = "crate::de::ipv4_nets")]
    pub proxy_arp: Vec<crate::Ipv4Net>,
    /// Static routes through this port's kernel twin (`{ to = "10.0.23.0/30", via =
    /// "10.0.12.2" }`), installed as the twin comes up, before LDP starts: where no IGP runs,
    /// the routes toward LDP neighbours' transport addresses and FECs, there before the first
    /// session is tried (a route added from outside after the twin appears races the
    /// neighbour's first SYN, and losing costs TCP's one-second retransmission).
    #[serde(default)]
    pub routes: Vec<StaticRoute>,
}

/// A static route on a kernel twin: `to` via the neighbour `via` on the port's link.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StaticRoute {
    /// The destination prefix.
    #[serde(deserialize_with = "crate::de::ipv4_net")]
    pub to: crate::Ipv4Net,
    /// The next hop: an address in the port's subnet.
    pub via: std::net::Ipv4Addr,
}

fn default_desc() -> u16 {
    1024
}

fn yes() -> bool {
    true
}

/// What the fast path does with frames.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum PipelineKind {
    /// Forward unchanged between paired ports (0↔1, 2↔3, ...), as testpmd's io mode.
    #[default]
    Io,
    /// As `io`, swapping Ethernet source and destination.
    Macswap,
    /// The MPLS gateway: headend, transit and tailend by port role.
    Node,
}

/// Idle sleeping of workers that find no traffic.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum IdleSleep {
    /// On when the machine has fewer cores than the lcores configured.
    #[default]
    Auto,
    /// Always sleep when idle.
    On,
    /// Busy-poll.
    Off,
}

/// Fast-path settings.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Dataplane {
    /// The forwarding pipeline.
    pub pipeline: PipelineKind,
    /// Frames per receive burst.
    pub burst: u16,
    /// Mbufs in the packet pool; default sized from ports, queues and descriptors.
    pub mbufs: Option<u32>,
    /// Idle sleep policy.
    pub idle_sleep: IdleSleep,
    /// Empty polls in a row before a worker sleeps.
    pub idle_polls: u32,
    /// How long an idle worker sleeps, in microseconds.
    pub idle_sleep_us: u32,
    /// A CSV file of subscribers to preload besides `[tables]`, relative to the
    /// configuration file: one line each, `port,vlan,mac,isp[,ipv4]` with the port by name
    /// (a header line starting with `port` is skipped).
    pub subscribers_csv: Option<String>,
    /// Slots of the punt ring from the workers to the slow path (a power of two).
    pub punt_ring: u32,
    /// Benchmarks only (`perf/run table-updates`): a thread that adds, binds and removes
    /// this many synthetic subscribers' entries per second through the update channel, in
    /// place of the slow path (which then changes no table). 0: off.
    pub bench_updates_per_s: u32,
}

impl Default for Dataplane {
    fn default() -> Self {
        Dataplane {
            pipeline: PipelineKind::Io,
            burst: 32,
            mbufs: None,
            idle_sleep: IdleSleep::Auto,
            idle_polls: 64,
            idle_sleep_us: 50,
            subscribers_csv: None,
            punt_ring: 4096,
            bench_updates_per_s: 0,
        }
    }
}

/// One worker lcore and the receive queues it polls.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Worker {
    /// EAL lcore id.
    pub lcore: u32,
    /// Receive queues this worker polls, as `{ port = "name", queue = N }`.
    pub rx: Vec<RxAssign>,
}

/// A (port, queue) pair polled by a worker.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RxAssign {
    /// Port name.
    pub port: String,
    /// Receive queue index.
    #[serde(default)]
    pub queue: u16,
}

/// Operator-facing settings.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Path of the control socket (`ispmux ctl`); none when absent.
    pub socket: Option<String>,
    /// Print per-port rates every this many seconds while running (0: only at exit).
    #[serde(default)]
    pub stats_interval_s: u32,
}
