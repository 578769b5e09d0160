//! The ispmux configuration: TOML as serde types, validation whose errors name the file,
//! line, column and key, and the derived plan (EAL arguments, which worker polls what).

pub mod api;
mod de;
pub mod dhcp;
mod error;
pub mod icmp;
mod ipv4_net;
pub mod ldp;
mod load;
mod model;
mod next_hop;
mod plan;
pub mod reload;
mod subscribers_csv;
mod tables;
mod validate;

pub mod radius;

use std::path::Path;

pub use de::PortName;
pub use error::{ConfError, Problem};
pub use ipv4_net::{IfAddr, Ipv4Net, Ipv4NetError};
pub use load::{check, load_gateway, load_radius_proxy, Checked, Loaded};
pub use model::*;
pub use next_hop::{NextHop, NextHopEntry, NextHopError, ToResolve};
pub use plan::{EalPlan, Plan, PortPlan, WorkerPlan};
pub use tables::{
    FecConfig, HandoffConfig, IlmActionConfig, IlmConfig, IspConfig, LimitsConfig,
    SubscriberConfig, TablesConfig,
};
pub use validate::{Issue, MAX_BURST};

/// Reads, parses and validates a configuration file for the gateway.
pub fn load(path: &Path) -> Result<Config, ConfError> {
    load_for(path, Purpose::Gateway)
}

/// Reads, parses and validates a configuration file for `purpose`.
pub fn load_for(path: &Path, purpose: Purpose) -> Result<Config, ConfError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse_for(&text, path, purpose)
}

/// Parses and validates configuration text; `path` is only used in messages.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfError> {
    parse_for(text, path, Purpose::Gateway)
}

/// Parses and validates configuration text for `purpose`; `path` is only used in messages.
pub fn parse_for(text: &str, path: &Path, purpose: Purpose) -> Result<Config, ConfError> {
    let invalid = |problems| ConfError::Invalid {
        path: path.to_owned(),
        problems,
    };
    let cfg: Config = match toml::from_str(text) {
        Ok(c) => c,
        Err(e) => {
            let (line, column) = e.span().map_or((0, 0), |s| error::line_col(text, s.start));
            let key = toml_edit::ImDocument::parse(text)
                .ok()
                .and_then(|doc| key_at(&doc, e.span()?.start))
                .unwrap_or_default();
            return Err(invalid(vec![Problem {
                key,
                line,
                column,
                message: e.message().trim().to_owned(),
            }]));
        }
    };
    let issues = validate::validate_for(&cfg, purpose);
    if issues.is_empty() {
        let mut cfg = cfg;
        if let Some(d) = cfg.dhcp.as_mut() {
            // Validated: every name is a port's.
            d.trusted_relay_port_ids = d
                .trusted_relay_ports
                .iter()
                .filter_map(|n| cfg.ports.iter().position(|p| &p.name == n))
                .map(|i| i as u16)
                .collect();
        }
        return Ok(cfg);
    }
    let doc = toml_edit::ImDocument::parse(text).ok();
    let mut problems: Vec<Problem> = issues
        .into_iter()
        .map(|(key, message)| {
            let (line, column) = doc
                .as_ref()
                .and_then(|d| error::span_of(d, &key))
                .map_or((0, 0), |s| error::line_col(text, s.start));
            Problem {
                key,
                line,
                column,
                message,
            }
        })
        .collect();
    problems.sort_by_key(|p| (p.line, p.column));
    Err(invalid(problems))
}

/// The dotted path of the key whose line holds `offset` (best effort, for parse errors).
fn key_at(doc: &toml_edit::ImDocument<&str>, offset: usize) -> Option<String> {
    fn walk(
        t: &dyn toml_edit::TableLike,
        prefix: &str,
        offset: usize,
        best: &mut Option<(usize, String)>,
    ) {
        for (k, item) in t.iter() {
            let path = if prefix.is_empty() {
                k.to_owned()
            } else {
                format!("{prefix}.{k}")
            };
            if let Some((key, _)) = t.get_key_value(k) {
                if let Some(s) = key.span() {
                    if s.start <= offset && best.as_ref().is_none_or(|(b, _)| s.start >= *b) {
                        *best = Some((s.start, path.clone()));
                    }
                }
            }
            match item {
                toml_edit::Item::ArrayOfTables(a) => {
                    for (i, tt) in a.iter().enumerate() {
                        walk(tt, &format!("{path}[{i}]"), offset, best);
                    }
                }
                other => {
                    if let Some(tt) = other.as_table_like() {
                        walk(tt, &path, offset, best);
                    }
                }
            }
        }
    }
    let mut best = None;
    walk(doc.as_table(), "", offset, &mut best);
    best.map(|(_, p)| p)
}

impl Config {
    /// The main (control) lcore.
    pub fn main_lcore(&self) -> Option<u32> {
        self.eal
            .main_lcore
            .or_else(|| self.eal.lcores.first().copied())
    }

    /// The lcores that run workers, in configured order.
    pub fn worker_lcores(&self) -> Vec<u32> {
        if !self.workers.is_empty() {
            return self.workers.iter().map(|w| w.lcore).collect();
        }
        let main = self.main_lcore();
        self.eal
            .lcores
            .iter()
            .copied()
            .filter(|&l| Some(l) != main)
            .collect()
    }
}

impl Port {
    /// True when the device is a PCI address (`0000:01:00.0` or `01:00.0`).
    pub fn is_pci(&self) -> bool {
        plan::pci_name(self.device.trim()).is_some()
    }

    /// The name DPDK gives the device's port: a vdev's name before its arguments, or the
    /// full PCI address.
    pub fn dpdk_name(&self) -> String {
        let d = self.device.trim();
        plan::pci_name(d).unwrap_or_else(|| d.split(',').next().unwrap_or(d).to_owned())
    }

    /// Whether the port routes (core or hand-off): in a node pipeline such a port has a
    /// kernel twin.
    pub fn is_routed(&self) -> bool {
        matches!(
            self.role,
            Some(ispmux_dataplane::PortRole::Core | ispmux_dataplane::PortRole::Handoff)
        )
    }

    /// The name of the port's kernel twin: `twin`, else `ispmux-<port name>`.
    pub fn twin_name(&self) -> String {
        match &self.twin {
            Some(t) => t.clone(),
            None => format!("ispmux-{}", self.name),
        }
    }
}

#[cfg(test)]
mod tests;
