//! Ethernet device ports: configuration, queues, link, statistics.

use std::ffi::CStr;
use std::fmt;
use std::sync::Arc;

use crate::eal::{guard, EalGuard};
use crate::error::{check, cstring, Error, Result};
use crate::ffi;
use crate::mbuf::Burst;
use crate::mempool::Mempool;

/// A DPDK port id.
pub type PortId = u16;

// RSS hash types (RTE_ETH_RSS_* are macros bindgen cannot evaluate).
const RSS_IPV4: u64 = 1 << 2;
const RSS_FRAG_IPV4: u64 = 1 << 3;
const RSS_NONFRAG_IPV4_TCP: u64 = 1 << 4;
const RSS_NONFRAG_IPV4_UDP: u64 = 1 << 5;
const RSS_NONFRAG_IPV4_OTHER: u64 = 1 << 7;
const RSS_IPV6: u64 = 1 << 8;

/// How to set a port up.
#[derive(Clone, Debug)]
pub struct PortConfig {
    /// Receive queues (one per worker that polls the port).
    pub rx_queues: u16,
    /// Transmit queues (one per worker that may send on the port).
    pub tx_queues: u16,
    /// Descriptors per receive queue.
    pub rx_desc: u16,
    /// Descriptors per transmit queue.
    pub tx_desc: u16,
    /// Accept frames to every destination MAC.
    pub promiscuous: bool,
    /// Spread flows over the receive queues by hash (when there is more than one).
    pub rss: bool,
    /// MTU to set, if any.
    pub mtu: Option<u16>,
}

impl Default for PortConfig {
    fn default() -> Self {
        PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            promiscuous: true,
            rss: true,
            mtu: None,
        }
    }
}

/// A MAC address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Link state of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    /// Link is up.
    pub up: bool,
    /// Speed in Mbit/s (0 when unknown).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// Basic port statistics (`rte_eth_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EthStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets dropped by the hardware because rx queues were full.
    pub imissed: u64,
    /// Receive errors.
    pub ierrors: u64,
    /// Transmit errors.
    pub oerrors: u64,
    /// Receive mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// A configured ethdev port. Stopped and closed on drop.
#[derive(Debug)]
pub struct Port {
    id: PortId,
    name: String,
    rx_queues: u16,
    tx_queues: u16,
    // Received mbufs come from this pool: it must outlive the port's queues.
    _pool: Arc<Mempool>,
    _eal: Arc<EalGuard>,
}

impl Port {
    /// Finds the port of a probed device by its name (`net_null0`, `0000:01:00.0`, ...).
    pub fn id_by_name(name: &str) -> Result<PortId> {
        let c = cstring(name)?;
        let mut id: u16 = 0;
        // SAFETY: `c` is a valid C string and `id` a valid out pointer.
        let rc = unsafe { ffi::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        if rc < 0 {
            return Err(Error::NoSuchPort(name.to_owned()));
        }
        Ok(id)
    }

    /// The name of port `id`.
    pub fn name_of(id: PortId) -> Result<String> {
        let mut buf = [0 as std::ffi::c_char; ffi::RTE_ETH_NAME_MAX_LEN as usize];
        // SAFETY: buf is RTE_ETH_NAME_MAX_LEN bytes, as the call requires.
        check("rte_eth_dev_get_name_by_port", unsafe {
            ffi::rte_eth_dev_get_name_by_port(id, buf.as_mut_ptr())
        })?;
        // SAFETY: on success the buffer holds a NUL-terminated name.
        Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned())
    }

    /// Configures port `id` with `cfg`, taking receive buffers from `pool`, and starts it.
    pub fn start(id: PortId, cfg: &PortConfig, pool: Arc<Mempool>) -> Result<Port> {
        let eal = guard()?;
        let name = Port::name_of(id)?;
        // SAFETY: rte_eth_dev_info is plain data; zeroed is a valid initial value.
        let mut info: ffi::rte_eth_dev_info = unsafe { std::mem::zeroed() };
        // SAFETY: valid port id (name_of succeeded) and a valid out pointer.
        check("rte_eth_dev_info_get", unsafe {
            ffi::rte_eth_dev_info_get(id, &mut info)
        })?;

        let mut conf = ffi::rte_eth_conf::default();
        if cfg.rss && cfg.rx_queues > 1 {
            let hf = (RSS_IPV4
                | RSS_FRAG_IPV4
                | RSS_NONFRAG_IPV4_TCP
                | RSS_NONFRAG_IPV4_UDP
                | RSS_NONFRAG_IPV4_OTHER
                | RSS_IPV6)
                & info.flow_type_rss_offloads;
            if hf != 0 {
                conf.rxmode.mq_mode = ffi::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
                conf.rx_adv_conf.rss_conf.rss_hf = hf;
            }
        }
        // SAFETY: valid port, conf fully initialised.
        check("rte_eth_dev_configure", unsafe {
            ffi::rte_eth_dev_configure(id, cfg.rx_queues, cfg.tx_queues, &conf)
        })?;
        let mut rx_desc = cfg.rx_desc;
        let mut tx_desc = cfg.tx_desc;
        // SAFETY: valid port and out pointers.
        check("rte_eth_dev_adjust_nb_rx_tx_desc", unsafe {
            ffi::rte_eth_dev_adjust_nb_rx_tx_desc(id, &mut rx_desc, &mut tx_desc)
        })?;
        // SAFETY: valid port.
        let socket = unsafe { ffi::rte_eth_dev_socket_id(id) };
        let socket = if socket < 0 { 0 } else { socket as u32 };
        for q in 0..cfg.rx_queues {
            // SAFETY: valid port and queue index below the configured count; the pool
            // outlives the port (held in `_pool`); a null rxconf selects the defaults.
            check("rte_eth_rx_queue_setup", unsafe {
                ffi::rte_eth_rx_queue_setup(id, q, rx_desc, socket, std::ptr::null(), pool.as_ptr())
            })?;
        }
        for q in 0..cfg.tx_queues {
            // SAFETY: as above; a null txconf selects the defaults.
            check("rte_eth_tx_queue_setup", unsafe {
                ffi::rte_eth_tx_queue_setup(id, q, tx_desc, socket, std::ptr::null())
            })?;
        }
        if let Some(mtu) = cfg.mtu {
            // SAFETY: valid port.
            check("rte_eth_dev_set_mtu", unsafe {
                ffi::rte_eth_dev_set_mtu(id, mtu)
            })?;
        }
        // SAFETY: valid, configured port.
        check("rte_eth_dev_start", unsafe { ffi::rte_eth_dev_start(id) })?;
        if cfg.promiscuous {
            // Some PMDs (net_ring) cannot change promiscuity and are promiscuous anyway:
            // failure here is not fatal.
            // SAFETY: valid, started port.
            let _ = unsafe { ffi::rte_eth_promiscuous_enable(id) };
        }
        Ok(Port {
            id,
            name,
            rx_queues: cfg.rx_queues,
            tx_queues: cfg.tx_queues,
            _pool: pool,
            _eal: eal,
        })
    }

    /// Port id.
    pub fn id(&self) -> PortId {
        self.id
    }

    /// Device name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The handle to poll receive queue `queue`; one worker owns each.
    pub fn rx_queue(&self, queue: u16) -> Result<RxQueue> {
        if queue >= self.rx_queues {
            return Err(Error::NoSuchQueue {
                port: self.id,
                queue,
            });
        }
        Ok(RxQueue {
            port: self.id,
            queue,
        })
    }

    /// The handle to send on transmit queue `queue`; one worker owns each.
    pub fn tx_queue(&self, queue: u16) -> Result<TxQueue> {
        if queue >= self.tx_queues {
            return Err(Error::NoSuchQueue {
                port: self.id,
                queue,
            });
        }
        Ok(TxQueue {
            port: self.id,
            queue,
        })
    }

    /// The port's MAC address.
    pub fn mac_addr(&self) -> Result<MacAddr> {
        let mut a = ffi::rte_ether_addr::default();
        // SAFETY: valid port and out pointer.
        check("rte_eth_macaddr_get", unsafe {
            ffi::rte_eth_macaddr_get(self.id, &mut a)
        })?;
        Ok(MacAddr(a.addr_bytes))
    }

    /// Current link state, without waiting.
    pub fn link(&self) -> Result<Link> {
        // SAFETY: rte_eth_link is plain data; zeroed is valid.
        let mut l: ffi::rte_eth_link = unsafe { std::mem::zeroed() };
        // SAFETY: valid port and out pointer.
        check("rte_eth_link_get_nowait", unsafe {
            ffi::rte_eth_link_get_nowait(self.id, &mut l)
        })?;
        Ok(Link {
            up: l.link_status() != 0,
            speed_mbps: l.link_speed,
            full_duplex: l.link_duplex() != 0,
        })
    }

    /// Basic statistics.
    pub fn stats(&self) -> Result<EthStats> {
        // SAFETY: rte_eth_stats is plain data; zeroed is valid.
        let mut s: ffi::rte_eth_stats = unsafe { std::mem::zeroed() };
        // SAFETY: valid port and out pointer.
        check("rte_eth_stats_get", unsafe {
            ffi::rte_eth_stats_get(self.id, &mut s)
        })?;
        Ok(EthStats {
            ipackets: s.ipackets,
            opackets: s.opackets,
            ibytes: s.ibytes,
            obytes: s.obytes,
            imissed: s.imissed,
            ierrors: s.ierrors,
            oerrors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        })
    }

    /// Extended statistics, by name.
    pub fn xstats(&self) -> Result<Vec<(String, u64)>> {
        // SAFETY: a null buffer with size 0 asks for the count.
        let n = check("rte_eth_xstats_get_names", unsafe {
            ffi::rte_eth_xstats_get_names(self.id, std::ptr::null_mut(), 0)
        })? as usize;
        let mut names = vec![ffi::rte_eth_xstat_name::default(); n];
        let mut vals = vec![ffi::rte_eth_xstat::default(); n];
        // SAFETY: both buffers hold n entries.
        let got_names = check("rte_eth_xstats_get_names", unsafe {
            ffi::rte_eth_xstats_get_names(self.id, names.as_mut_ptr(), n as u32)
        })? as usize;
        // SAFETY: as above.
        let got_vals = check("rte_eth_xstats_get", unsafe {
            ffi::rte_eth_xstats_get(self.id, vals.as_mut_ptr(), n as u32)
        })? as usize;
        let mut out = Vec::with_capacity(n);
        for v in vals.iter().take(got_vals.min(n)) {
            let Some(name) = names
                .get(v.id as usize)
                .filter(|_| (v.id as usize) < got_names)
            else {
                continue;
            };
            // SAFETY: DPDK NUL-terminates xstat names within the fixed array.
            let s = unsafe { CStr::from_ptr(name.name.as_ptr()) }
                .to_string_lossy()
                .into_owned();
            out.push((s, v.value));
        }
        Ok(out)
    }

    /// Clears the basic statistics.
    pub fn reset_stats(&self) -> Result<()> {
        // SAFETY: valid port.
        check("rte_eth_stats_reset", unsafe {
            ffi::rte_eth_stats_reset(self.id)
        })
        .map(|_| ())
    }

    /// Stops the port (queues stop; it can be started again with [`Port::restart`]).
    pub fn stop(&self) -> Result<()> {
        // SAFETY: valid port.
        check("rte_eth_dev_stop", unsafe {
            ffi::rte_eth_dev_stop(self.id)
        })
        .map(|_| ())
    }

    /// Starts a stopped port again with the same configuration.
    pub fn restart(&self) -> Result<()> {
        // SAFETY: valid, configured port.
        check("rte_eth_dev_start", unsafe {
            ffi::rte_eth_dev_start(self.id)
        })
        .map(|_| ())
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        // SAFETY: valid port; no queue handle outlives the workers, which the owner has
        // waited for before dropping the port. Closing frees the mbufs left in its rings.
        unsafe {
            ffi::rte_eth_dev_stop(self.id);
            ffi::rte_eth_dev_close(self.id);
        }
    }
}

/// The exclusive right to poll one receive queue.
#[derive(Debug)]
pub struct RxQueue {
    port: PortId,
    queue: u16,
}

impl RxQueue {
    /// Port id.
    pub fn port(&self) -> PortId {
        self.port
    }

    /// Queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Receives up to `max` frames, appending them to `burst`; returns how many.
    #[inline]
    pub fn rx_burst(&mut self, burst: &mut Burst, max: usize) -> usize {
        let (slots, room) = burst.spare(max);
        if room == 0 {
            return 0;
        }
        // SAFETY: `slots` has room for `room` pointers; we own this queue exclusively
        // (&mut self on a handle created once per queue).
        let n = unsafe { ffi::ispmux_rx_burst(self.port, self.queue, slots, room) };
        // SAFETY: the PMD wrote n owned mbuf pointers into those slots.
        unsafe { burst.grow(usize::from(n)) };
        usize::from(n)
    }
}

/// The exclusive right to send on one transmit queue.
#[derive(Debug)]
pub struct TxQueue {
    port: PortId,
    queue: u16,
}

impl TxQueue {
    /// Port id.
    pub fn port(&self) -> PortId {
        self.port
    }

    /// Queue index.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Sends what `burst` holds; mbufs the port accepted leave it, the rest stay at its front.
    #[inline]
    pub fn tx_burst(&mut self, burst: &mut Burst) -> usize {
        let n = burst.len().min(usize::from(u16::MAX)) as u16;
        if n == 0 {
            return 0;
        }
        // SAFETY: the burst holds n owned mbufs; we own this queue exclusively.
        let sent = unsafe { ffi::ispmux_tx_burst(self.port, self.queue, burst.raw_ptr(), n) };
        // SAFETY: the PMD took ownership of the first `sent` mbufs.
        unsafe { burst.consumed(usize::from(sent)) };
        usize::from(sent)
    }
}
