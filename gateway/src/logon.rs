//! The subscriber registry as the gateway opens it, and the DHCP logon proxy's start:
//! the store, the ISPs it knows, the ISP-side socket, and the bindings restored from the
//! store.

use std::path::Path;

use ispmux_conf::dhcp::DhcpConfig;
use ispmux_conf::Config;
use ispmux_slowpath::dhcp::service::{Effects, LogonService};
use ispmux_slowpath::dhcp::MacAddr;
use ispmux_slowpath::registry::{Isp, Registry};
use ispmux_slowpath::time::Now;

use crate::error::{GatewayError, Step};

/// Opens the store named by `[store] path` (creating its directory, so a fresh host needs
/// no preparation) and records the `[dhcp]` ISPs, so subscribers can be registered
/// against them.
pub fn open_registry(cfg: &Config) -> Result<Registry, GatewayError> {
    let path = Path::new(&cfg.store.path);
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).step(|| format!("creating {}", dir.display()))?;
    }
    let mut reg = Registry::open(path).step(|| format!("opening the store {}", path.display()))?;
    if let Some(d) = &cfg.dhcp {
        for isp in &d.isps {
            let label = cfg
                .tables
                .isps
                .iter()
                .find(|t| t.name == isp.name)
                .and_then(|t| t.upstream.as_ref().map(|f| f.label));
            reg.upsert_isp(&Isp {
                name: isp.name.clone(),
                label,
                dhcp_servers: isp.servers.clone(),
            })
            .step(|| format!("recording ISP {:?} in the registry", isp.name))?;
        }
    }
    Ok(reg)
}

/// Starts the logon proxy, its replies sent from `port_macs` (by port index); its effects
/// are the bindings restored from the store.
pub fn start(
    cfg: &Config,
    d: &DhcpConfig,
    port_macs: Vec<MacAddr>,
) -> Result<(LogonService, Effects), GatewayError> {
    drop(open_registry(cfg)?);
    let path = Path::new(&cfg.store.path);
    let (svc, restored) = LogonService::start_with_writer(d, path, port_macs, Now::system())
        .step(|| format!("starting the DHCP logon proxy on {}:67", d.relay_address))?;
    tracing::info!(relay = %d.relay_address, server_id = %d.server_identifier, restored = restored.bindings.len(), "DHCP logon proxy up");
    Ok((svc, restored))
}
