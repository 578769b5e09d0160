//! Starting the DHCP logon proxy inside `ispmux run`: the store, the ISPs it knows, the
//! ISP-side socket, and the bindings restored from the store.

use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result};
use ispmux_conf::dhcp::DhcpConfig;
use ispmux_conf::Config;
use ispmux_slowpath::dhcp::service::{Effects, LogonService};
use ispmux_slowpath::dhcp::MacAddr;
use ispmux_slowpath::registry::{Isp, Registry};

/// Opens the store (creating its directory), records the `[dhcp]` ISPs in the registry so
/// subscribers can be registered against them, and starts the service.
pub fn start(
    cfg: &Config,
    d: &DhcpConfig,
    gateway_mac: MacAddr,
) -> Result<(LogonService, Effects)> {
    let path = Path::new(&cfg.store.path);
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut reg =
        Registry::open(path).with_context(|| format!("opening the store {}", path.display()))?;
    for isp in &d.isps {
        let label = cfg
            .tables
            .isps
            .iter()
            .find(|t| t.name == isp.name)
            .and_then(|t| t.upstream.map(|f| f.label));
        reg.upsert_isp(&Isp {
            name: isp.name.clone(),
            label,
            dhcp_servers: isp.servers.clone(),
        })
        .with_context(|| format!("recording ISP {:?} in the registry", isp.name))?;
    }
    drop(reg);
    let (svc, restored) = LogonService::start_with_writer(d, path, gateway_mac, SystemTime::now())
        .with_context(|| format!("starting the DHCP logon proxy on {}:67", d.relay_address))?;
    tracing::info!(relay = %d.relay_address, server_id = %d.server_identifier, restored = restored.bindings.len(), "DHCP logon proxy up");
    Ok((svc, restored))
}
