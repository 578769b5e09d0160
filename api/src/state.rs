//! What every request shares: the store (the registry and the ISP tokens, each on its own
//! SQLite connection used from blocking threads, never from the reactor), the running
//! gateway's command handle, the operator's token hash and the failed-login table.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use ispmux_conf::api::ApiConfig;
use ispmux_gateway::{AskError, CommandSender, ControlAnswer, ControlCommand};
use ispmux_slowpath::registry::{PasswordCost, Registry};

use crate::auth::{self, Caller, FailedLogins};
use crate::config_file::ConfigFile;
use crate::error::ApiError;
use crate::token::{self, TokenStore};

/// How long a request waits for the gateway's control thread (it answers every 20 ms).
const ASK_WAIT: Duration = Duration::from_secs(5);

/// The limits of requests.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Subscribers per bulk import.
    pub max_import_items: usize,
    /// Argon2id cost of clear passwords, and the least of hashes sent.
    pub cost: PasswordCost,
    /// Blocking threads a bulk import hashes clear passwords on.
    pub hash_threads: usize,
}

impl Limits {
    /// From `[api]`.
    pub fn of(cfg: &ApiConfig) -> Self {
        Limits {
            max_import_items: cfg.max_import_items,
            cost: PasswordCost {
                m_kib: cfg.argon2_m_kib,
                t: cfg.argon2_t,
            },
            hash_threads: cfg.threads,
        }
    }
}

/// The state shared by the API's requests.
pub struct AppState {
    reg: Arc<Mutex<Registry>>,
    tokens: Arc<Mutex<TokenStore>>,
    gateway: Option<CommandSender>,
    operator_sha256: Option<String>,
    failures: Mutex<FailedLogins>,
    config: Option<ConfigFile>,
    /// The request limits.
    pub limits: Limits,
}

impl AppState {
    /// Over the store at `path` (the registry migrated and its ISPs recorded by the caller).
    pub fn open(
        cfg: &ApiConfig,
        path: &Path,
        gateway: Option<CommandSender>,
    ) -> Result<Self, crate::StartError> {
        let reg = Registry::open(path).map_err(|e| crate::StartError::Store(e.to_string()))?;
        let tokens = TokenStore::open(path).map_err(|e| crate::StartError::Store(e.to_string()))?;
        Ok(Self::new(cfg, reg, tokens, gateway))
    }

    /// Over open stores (tests).
    pub fn new(
        cfg: &ApiConfig,
        reg: Registry,
        tokens: TokenStore,
        gateway: Option<CommandSender>,
    ) -> Self {
        AppState {
            reg: Arc::new(Mutex::new(reg)),
            tokens: Arc::new(Mutex::new(tokens)),
            gateway,
            operator_sha256: cfg.operator_token_sha256.clone(),
            failures: Mutex::new(FailedLogins::new(
                cfg.login_failures,
                Duration::from_secs(u64::from(cfg.login_window_s)),
            )),
            limits: Limits::of(cfg),
            config: None,
        }
    }

    /// With the configuration file the gateway runs, for the operator's routes that edit it.
    pub fn with_config_file(mut self, path: PathBuf) -> Self {
        self.config = Some(ConfigFile::new(path));
        self
    }

    /// The configuration file the operator's routes edit.
    pub fn config_file(&self) -> Result<&ConfigFile, ApiError> {
        self.config.as_ref().ok_or_else(|| {
            ApiError::unavailable(
                "this daemon has no configuration file to edit (only `ispmux run` has)",
            )
        })
    }

    /// Runs `f` on the registry on a blocking thread.
    pub async fn registry<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Registry) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let reg = self.reg.clone();
        blocking(move || f(&mut reg.lock().unwrap_or_else(PoisonError::into_inner))).await
    }

    /// Runs `f` on the token store on a blocking thread.
    pub async fn tokens<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut TokenStore) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let t = self.tokens.clone();
        blocking(move || f(&mut t.lock().unwrap_or_else(PoisonError::into_inner))).await
    }

    /// Asks the running gateway (the same commands as `ispmux ctl`).
    pub async fn ask(&self, cmd: ControlCommand) -> Result<ControlAnswer, AskError> {
        let Some(g) = self.gateway.clone() else {
            return Err(AskError::Gone);
        };
        tokio::task::spawn_blocking(move || g.ask(cmd, ASK_WAIT))
            .await
            .unwrap_or(Err(AskError::Gone))
    }

    /// Who sends a request from `source` with `headers`; a missing or unknown token counts
    /// as a failed login of the source.
    pub async fn caller(&self, headers: &HeaderMap, source: IpAddr) -> Result<Caller, ApiError> {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check(source, Instant::now())?;
        let found = match auth::bearer(headers) {
            None => None,
            Some(tok) => {
                let digest = token::sha256_hex(tok);
                if self
                    .operator_sha256
                    .as_deref()
                    .is_some_and(|h| token::same_digest(h, &digest))
                {
                    Some(Caller::Operator)
                } else {
                    let tok = tok.to_owned();
                    self.tokens(move |t| t.isp_of(&tok).map_err(ApiError::internal))
                        .await?
                        .map(Caller::Isp)
                }
            }
        };
        found.ok_or_else(|| {
            self.failures
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .fail(source, Instant::now());
            auth::unauthorized()
        })
    }
}

/// Runs `f` on a blocking thread; a panic there is a 500, never the runtime's end.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(ApiError::internal(e)))
}
