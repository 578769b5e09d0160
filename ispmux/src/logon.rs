//! Starting the DHCP logon proxy inside `ispmux run`: the store, the ISPs it knows, the
//! ISP-side socket, and the bindings restored from the store.

use std::path::Path;

use anyhow::{Context, Result};
use ispmux_conf::dhcp::DhcpConfig;
use ispmux_conf::Config;
use ispmux_slowpath::dhcp::service::{Effects, LogonService};
use ispmux_slowpath::dhcp::MacAddr;
use ispmux_slowpath::time::Now;

/// Opens the store (creating its directory), records the `[dhcp]` ISPs in the registry and
/// starts the service.
pub fn start(
    cfg: &Config,
    d: &DhcpConfig,
    port_macs: Vec<MacAddr>,
) -> Result<(LogonService, Effects)> {
    let path = Path::new(&cfg.store.path);
    // Records the [dhcp] ISPs so subscribers can be registered against them.
    let reg = crate::registry_cli::open(cfg)?;
    drop(reg);
    let (svc, restored) = LogonService::start_with_writer(d, path, port_macs, Now::system())
        .with_context(|| format!("starting the DHCP logon proxy on {}:67", d.relay_address))?;
    tracing::info!(relay = %d.relay_address, server_id = %d.server_identifier, restored = restored.bindings.len(), "DHCP logon proxy up");
    Ok((svc, restored))
}
