//! `ispmux token ...`: the provisioning API's bearer tokens. The operator's is configured by
//! its SHA-256 (`[api] operator_token_sha256`), so the file holds nothing that logs in; ISP
//! tokens are kept in the store by their SHA-256, issued, listed and revoked here or over
//! the API by the operator.

use std::io::Write;

use anyhow::{Context, Result};
use clap::Subcommand;
use ispmux_api::token::{self, TokenStore};
use ispmux_conf::Config;

/// Token commands.
#[derive(Subcommand)]
pub enum TokenCmd {
    /// Make a new operator token: prints it, and the `[api]` line that configures it.
    Operator,
    /// Issue a token for an ISP (printed once; only its hash is kept).
    Issue {
        /// The ISP it acts for.
        #[arg(long)]
        isp: String,
        /// A note: what or who it is for.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// List issued ISP tokens (never the tokens themselves).
    List {
        /// Only this ISP's.
        #[arg(long)]
        isp: Option<String>,
    },
    /// Revoke an ISP token by its id.
    Revoke {
        /// The id `list` shows.
        id: i64,
    },
}

/// Runs a token command; the operator's needs no configuration.
pub fn token(cfg: Option<&Config>, cmd: TokenCmd, out: &mut dyn Write) -> Result<()> {
    if let TokenCmd::Operator = cmd {
        let t = token::generate();
        writeln!(out, "token: {t}")?;
        writeln!(out, "operator_token_sha256 = \"{}\"", token::sha256_hex(&t))?;
        return Ok(());
    }
    let cfg = cfg.context("give the configuration (-c FILE): the store is named there")?;
    // Records the configured ISPs, as `ispmux subscriber` does.
    drop(crate::registry_cli::open(cfg)?);
    let mut store = TokenStore::open(std::path::Path::new(&cfg.store.path))?;
    match cmd {
        TokenCmd::Operator => {}
        TokenCmd::Issue { isp, label } => {
            let (t, info) = store
                .issue(&isp, &label)
                .with_context(|| format!("issuing a token for {isp}"))?;
            writeln!(out, "id: {}", info.id)?;
            writeln!(out, "token: {t}")?;
        }
        TokenCmd::List { isp } => {
            writeln!(out, "id,isp,label,created")?;
            for t in store.list(isp.as_deref())? {
                writeln!(out, "{},{},{},{}", t.id, t.isp, t.label, t.created)?;
            }
        }
        TokenCmd::Revoke { id } => {
            if !store.revoke(None, id)? {
                anyhow::bail!("no token {id}");
            }
            writeln!(out, "revoked token {id}")?;
        }
    }
    Ok(())
}
