//! The API's thread, runtime, listener and TLS, and the layers every request passes
//! (body limit, time limit).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::Router;
use axum_server::tls_rustls::RustlsConfig;
use ispmux_conf::api::ApiConfig;
use ispmux_gateway::CommandSender;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tower_http::timeout::TimeoutLayer;

use crate::state::AppState;

/// How long a stopping server lets requests in flight finish.
const GRACE: Duration = Duration::from_secs(2);

/// How long a connection may take to send a request's headers: a client that trickles them
/// (slowloris) loses its connection instead of holding it. TLS handshakes have axum-server's
/// own 10 s.
const HEADER_READ: Duration = Duration::from_secs(10);

fn limit_connections(
    b: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
) {
    b.http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ);
}

/// Why the API did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store did not open.
    #[error("api: the store: {0}")]
    Store(String),
    /// The certificate or key did not load.
    #[error("api: TLS {what} {path}: {reason}")]
    Tls {
        /// Certificate or key.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Binding the address, or starting the runtime, failed.
    #[error("api: {what} {addr}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The router with its layers, over `state`: what the server serves and tests call.
pub fn app(state: Arc<AppState>, cfg: &ApiConfig) -> Router {
    crate::routes::router(state)
        .layer(DefaultBodyLimit::max(cfg.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(u64::from(cfg.request_timeout_s)),
        ))
}

fn tls_config(cfg: &ApiConfig) -> Result<Option<rustls::ServerConfig>, StartError> {
    let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) else {
        return Ok(None);
    };
    let err = |what, path: &str, reason: String| StartError::Tls {
        what,
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| err("certificate", cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(err(
            "certificate",
            cert,
            "no certificate in the file".into(),
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| err("key", key, e.to_string()))?;
    // ring, whose provider rustls now marks for lacking post-quantum key exchange: the
    // aws-lc-rs one needs a C build of minutes here. TLS 1.3 with X25519 still protects the
    // tokens and passwords today; switching is this line and a feature in Cargo.toml.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    let mut sc = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| err("certificate", cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| err("key", key, e.to_string()))?;
    sc.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(sc))
}

/// The running API.
pub struct ApiServer {
    addr: SocketAddr,
    handle: axum_server::Handle,
    thread: Option<JoinHandle<()>>,
}

impl ApiServer {
    /// Starts serving `cfg` over the store at `store` (ISPs recorded already), asking
    /// `gateway` for revocations and counters; the operator's routes edit `config_file`,
    /// the file the gateway reloads. Errors in the files, the store or the address are
    /// returned here; the server then runs on its own thread until [`ApiServer::stop`].
    pub fn start(
        cfg: &ApiConfig,
        store: &Path,
        gateway: Option<CommandSender>,
        config_file: Option<&Path>,
    ) -> Result<ApiServer, StartError> {
        let mut state = AppState::open(cfg, store, gateway)?;
        if let Some(f) = config_file {
            state = state.with_config_file(f.to_owned());
        }
        let state = Arc::new(state);
        Self::start_with(cfg, state)
    }

    /// Starts serving `state` (tests build it over their own stores).
    pub fn start_with(cfg: &ApiConfig, state: Arc<AppState>) -> Result<ApiServer, StartError> {
        let io = |what, addr| move |source| StartError::Io { what, addr, source };
        let tls = tls_config(cfg)?;
        let listener =
            std::net::TcpListener::bind(cfg.listen).map_err(io("binding", cfg.listen))?;
        listener
            .set_nonblocking(true)
            .map_err(io("binding", cfg.listen))?;
        let addr = listener.local_addr().map_err(io("binding", cfg.listen))?;
        let cpus = cfg.cpus.clone();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.threads)
            .max_blocking_threads(cfg.threads)
            .thread_name("ispmux-api")
            .on_thread_start(move || {
                if let Some(c) = &cpus {
                    if let Err(e) = ispmux_sys::pin_current_thread(c) {
                        tracing::warn!(error = %e, cpus = ?c, "api: pinning a thread");
                    }
                }
            })
            .enable_all()
            .build()
            .map_err(io("starting the runtime for", addr))?;
        let handle = axum_server::Handle::new();
        let app = app(state, cfg).into_make_service_with_connect_info::<SocketAddr>();
        let h = handle.clone();
        let thread = std::thread::Builder::new()
            .name("ispmux-api".into())
            .spawn(move || {
                rt.block_on(async move {
                    let r = match tls {
                        Some(sc) => {
                            let mut s = axum_server::from_tcp_rustls(
                                listener,
                                RustlsConfig::from_config(Arc::new(sc)),
                            );
                            limit_connections(s.http_builder());
                            s.handle(h).serve(app).await
                        }
                        None => {
                            let mut s = axum_server::from_tcp(listener);
                            limit_connections(s.http_builder());
                            s.handle(h).serve(app).await
                        }
                    };
                    if let Err(e) = r {
                        tracing::error!(error = %e, "api: the server stopped");
                    }
                });
            })
            .map_err(io("starting the thread for", addr))?;
        tracing::info!(%addr, tls = cfg.tls(), "provisioning API up");
        Ok(ApiServer {
            addr,
            handle,
            thread: Some(thread),
        })
    }

    /// The address served (the configured one, with the port the kernel chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets requests in flight finish for a moment, and joins the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.handle.graceful_shutdown(Some(GRACE));
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("api: the server thread panicked");
            }
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
