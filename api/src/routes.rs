//! The routes: one list ([`routes`]) from which the router is built and against which the
//! OpenAPI document is checked, and their handlers.
//!
//! ISP routes live under `/v1/isps/{isp}/...` for ISPs and the operator alike. An ISP's
//! token acts only on its own ISP: any other `{isp}` answers exactly as an ISP that does not
//! exist, and another ISP's subscriber exactly as a subscriber that does not exist.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put, MethodRouter};
use axum::{Json, Router};
use ispmux_gateway::metrics::Exposition;
use ispmux_gateway::{AskError, ControlAnswer, ControlCommand};
use ispmux_slowpath::dhcp::MacAddr;
use ispmux_slowpath::registry::{
    password, Binding, PasswordCost, Registry, RegistryError, Status, Subscriber, SubscriberChange,
    SubscriberQuery,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::model::{
    self, BindingOut, ChangeIn, CountersOut, NewSubscriberIn, RefusalOut, SubscriberOut, TokenIn,
};
use crate::operator;
use crate::state::{blocking, AppState};

type St = State<Arc<AppState>>;
type Answer = Result<Response, ApiError>;

/// Every route served: method, path (OpenAPI's template form) and handler.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<Arc<AppState>>)> {
    vec![
        (Method::GET, "/v1/isps", get(list_isps)),
        (
            Method::GET,
            "/v1/isps/{isp}/subscribers",
            get(list_subscribers),
        ),
        (
            Method::POST,
            "/v1/isps/{isp}/subscribers",
            post(add_subscriber),
        ),
        (
            Method::POST,
            "/v1/isps/{isp}/subscribers/import",
            post(import),
        ),
        (
            Method::GET,
            "/v1/isps/{isp}/subscribers/{mac}",
            get(get_subscriber),
        ),
        (
            Method::PATCH,
            "/v1/isps/{isp}/subscribers/{mac}",
            patch(change_subscriber),
        ),
        (
            Method::DELETE,
            "/v1/isps/{isp}/subscribers/{mac}",
            delete(remove_subscriber),
        ),
        (
            Method::POST,
            "/v1/isps/{isp}/subscribers/{mac}/suspend",
            post(suspend),
        ),
        (
            Method::POST,
            "/v1/isps/{isp}/subscribers/{mac}/resume",
            post(resume),
        ),
        (Method::GET, "/v1/isps/{isp}/bindings", get(bindings)),
        (Method::GET, "/v1/isps/{isp}/refusals", get(isp_refusals)),
        (Method::GET, "/v1/isps/{isp}/counters", get(counters)),
        (Method::GET, "/v1/isps/{isp}/tokens", get(list_tokens)),
        (Method::POST, "/v1/isps/{isp}/tokens", post(issue_token)),
        (
            Method::DELETE,
            "/v1/isps/{isp}/tokens/{id}",
            delete(revoke_token),
        ),
        (Method::GET, "/v1/refusals", get(all_refusals)),
        (Method::GET, "/v1/stats", get(stats)),
        (Method::POST, "/v1/reload", post(reload)),
        (Method::GET, "/metrics", get(metrics)),
        (
            Method::POST,
            "/v1/client-sps/{csp}/suspend",
            post(suspend_csp),
        ),
        (
            Method::POST,
            "/v1/client-sps/{csp}/resume",
            post(resume_csp),
        ),
        // The operator's edits of the configuration file (crate::operator).
        (Method::POST, "/v1/isps", post(operator::create_isp)),
        (Method::GET, "/v1/isps/{isp}", get(operator::get_isp)),
        (Method::PATCH, "/v1/isps/{isp}", patch(operator::change_isp)),
        (
            Method::DELETE,
            "/v1/isps/{isp}",
            delete(operator::remove_isp),
        ),
        (Method::GET, "/v1/client-sps", get(operator::list_csps)),
        (
            Method::PATCH,
            "/v1/client-sps/{csp}",
            patch(operator::change_csp),
        ),
        (Method::GET, "/v1/labels", get(operator::list_labels)),
        (Method::PUT, "/v1/labels/{label}", put(operator::put_label)),
        (
            Method::DELETE,
            "/v1/labels/{label}",
            delete(operator::remove_label),
        ),
    ]
}

/// The router of [`routes`], answering unknown routes and methods with JSON refusals too.
pub fn router(state: Arc<AppState>) -> Router {
    let mut by_path: BTreeMap<&'static str, MethodRouter<Arc<AppState>>> = BTreeMap::new();
    for (_, path, mr) in routes() {
        let merged = match by_path.remove(path) {
            Some(m) => m.merge(mr),
            None => mr,
        };
        by_path.insert(path, merged);
    }
    let mut r = Router::new();
    for (path, mr) in by_path {
        r = r.route(path, mr.fallback(no_method));
    }
    r.fallback(no_route).with_state(state)
}

async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such route",
        "see the OpenAPI document",
    )
}

async fn no_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed",
        "see the OpenAPI document",
    )
}

/// The caller of a request, from its bearer token, the source address limited.
pub struct Auth(pub Caller);

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        // In-process callers (tests) have no connection: they count as one source.
        let source = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        state.caller(&parts.headers, source).await.map(Auth)
    }
}

pub(crate) fn path<T>(p: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    p.map(|Path(v)| v)
        .map_err(|e| ApiError::new(e.status(), "bad path", e.body_text()).field("path"))
}

pub(crate) fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::invalid("query", e.body_text()))
}

pub(crate) fn ok(status: StatusCode, v: impl Serialize) -> Answer {
    Ok((status, Json(v)).into_response())
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e)
}

/// Refuses `isp` unless the caller may see it and it exists (the same 404 either way).
async fn visible_isp(st: &AppState, c: &Caller, isp: &str) -> Result<(), ApiError> {
    c.scope(isp)?;
    let name = isp.to_owned();
    let exists = st
        .registry(move |r| r.has_isp(&name).map_err(internal))
        .await?;
    if exists {
        Ok(())
    } else {
        Err(ApiError::no_isp(isp))
    }
}

/// `isp`'s subscriber `mac`: another ISP's answers exactly as a missing one.
fn own(r: &Registry, isp: &str, mac: MacAddr) -> Result<Subscriber, ApiError> {
    match r.subscriber(mac).map_err(internal)? {
        Some(s) if s.isp == isp => Ok(s),
        _ => Err(ApiError::no_subscriber(&mac.to_string())),
    }
}

/// Reads `{isp}` and `{mac}` of a subscriber's route and checks the caller may see it.
fn subscriber_key(c: &Caller, isp: &str, mac: &str) -> Result<MacAddr, ApiError> {
    let m = model::mac_param(mac)?;
    c.scope(isp)
        .map_err(|_| ApiError::no_subscriber(&m.to_string()))?;
    Ok(m)
}

async fn list_isps(State(st): St, Auth(c): Auth) -> Answer {
    let isps = st.registry(|r| r.list_isps().map_err(internal)).await?;
    let out: Vec<_> = isps
        .iter()
        .filter(|i| c.scope(&i.name).is_ok())
        .map(|i| {
            json!({
                "name": i.name,
                "label": i.label,
                "dhcp_servers": i.dhcp_servers.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        })
        .collect();
    ok(StatusCode::OK, json!({ "isps": out }))
}

/// Subscribers per page unless `limit` says.
const PAGE: u32 = 100;
/// The largest page.
const MAX_PAGE: u32 = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    status: Option<model::StatusJson>,
    #[serde(default)]
    customer_id_prefix: Option<String>,
}

async fn list_subscribers(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<ListParams>, QueryRejection>,
) -> Answer {
    let isp = path(p)?;
    let q = query(q)?;
    visible_isp(&st, &c, &isp).await?;
    let limit = q.limit.unwrap_or(PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be 1 to {MAX_PAGE}"),
        ));
    }
    let after = q
        .after
        .as_deref()
        .map(|a| model::mac_param(a).map_err(|e| e.field("after")))
        .transpose()?;
    let query = SubscriberQuery {
        isp: Some(isp),
        status: q.status.map(Status::from),
        customer_id_prefix: q.customer_id_prefix,
        after,
        limit,
    };
    let page = st
        .registry(move |r| r.page_subscribers(&query).map_err(internal))
        .await?;
    let next = (page.len() == limit as usize)
        .then(|| page.last().map(|s| s.mac.to_string()))
        .flatten();
    let subs: Vec<SubscriberOut> = page.iter().map(SubscriberOut::from).collect();
    ok(StatusCode::OK, json!({ "subscribers": subs, "next": next }))
}

/// A password as given: none, in clear (to hash), or hashed already (checked).
enum Credential {
    None,
    Clear(String),
    Hashed(String),
}

/// `item`: the position in an import, whose fields are named `[i].password...`; `None` for
/// a single subscriber's own body.
fn credential(
    cost: PasswordCost,
    clear: Option<String>,
    hashed: Option<String>,
    item: Option<usize>,
) -> Result<Credential, ApiError> {
    // Formatted only for a refusal: an import checks every row.
    let at = || item.map_or_else(String::new, |i| format!("[{i}]."));
    match (clear, hashed) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            format!("{}password_hash", at()),
            "give password or password_hash, not both",
        )),
        (Some(p), None) if p.is_empty() => Err(ApiError::invalid(
            format!("{}password", at()),
            "empty; leave it out for no password",
        )),
        (Some(p), None) => Ok(Credential::Clear(p)),
        (None, Some(h)) => password::check_phc(&h, cost)
            .map(|()| Credential::Hashed(h))
            .map_err(|e| ApiError::invalid(format!("{}password_hash", at()), e.0)),
        (None, None) => Ok(Credential::None),
    }
}

/// Hashes the clear passwords of `creds` on up to `hash_threads` blocking threads: Argon2
/// is the cost of a bulk import with passwords, and the API's threads are its to use.
async fn resolve(st: &AppState, creds: Vec<Credential>) -> Result<Vec<Option<String>>, ApiError> {
    let cost = st.limits.cost;
    let mut out: Vec<Option<String>> = Vec::with_capacity(creds.len());
    let mut clear: Vec<(usize, String)> = Vec::new();
    for (i, c) in creds.into_iter().enumerate() {
        match c {
            Credential::None => out.push(None),
            Credential::Hashed(h) => out.push(Some(h)),
            Credential::Clear(p) => {
                out.push(None);
                clear.push((i, p));
            }
        }
    }
    if clear.is_empty() {
        return Ok(out);
    }
    let per = clear.len().div_ceil(st.limits.hash_threads.max(1));
    let mut set = tokio::task::JoinSet::new();
    while !clear.is_empty() {
        let chunk: Vec<(usize, String)> = clear.drain(..per.min(clear.len())).collect();
        set.spawn_blocking(move || {
            chunk
                .into_iter()
                .map(|(i, p)| password::hash(p.as_bytes(), cost).map(|h| (i, h)))
                .collect::<Result<Vec<_>, _>>()
        });
    }
    while let Some(r) = set.join_next().await {
        for (i, h) in r.map_err(internal)?.map_err(internal)? {
            out[i] = Some(h);
        }
    }
    Ok(out)
}

async fn add_subscriber(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<String>, PathRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Answer {
    let isp = path(p)?;
    visible_isp(&st, &c, &isp).await?;
    let n: NewSubscriberIn = model::json(&model::body(b)?)?;
    let cred = credential(st.limits.cost, n.password, n.password_hash, None)?;
    let hash = resolve(&st, vec![cred]).await?.pop().flatten();
    let sub = Subscriber {
        mac: n.mac.0,
        isp,
        customer_id: n.customer_id,
        password_hash: hash,
        status: n.status.map_or(Status::Active, Status::from),
    };
    let out = SubscriberOut::from(&sub);
    st.registry(move |r| {
        r.add_hashed(&[sub]).map_err(|e| match e {
            // One item: its fields are the body's own, not `[0].`'s.
            RegistryError::Item { source, .. } => ApiError::from_registry(*source, ""),
            e => ApiError::from_registry(e, ""),
        })
    })
    .await?;
    ok(StatusCode::CREATED, out)
}

async fn import(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Answer {
    let isp = path(p)?;
    visible_isp(&st, &c, &isp).await?;
    let bytes = model::body(b)?;
    let is_csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/csv"));
    let max = st.limits.max_import_items;
    let cost = st.limits.cost;
    let started = std::time::Instant::now();
    // Reading and checking 100,000 rows (and their PHC strings) is work for a blocking
    // thread, not the reactor.
    let (creds, rest) = {
        let isp = isp.clone();
        blocking(move || {
            let rows = crate::import::rows(&bytes, &isp, is_csv)?;
            if rows.len() > max {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too many items",
                    format!("{} subscribers; at most {max} per import", rows.len()),
                )
                .field("body"));
            }
            let mut creds = Vec::with_capacity(rows.len());
            let mut rest = Vec::with_capacity(rows.len());
            for (i, n) in rows.into_iter().enumerate() {
                creds.push(credential(cost, n.password, n.password_hash, Some(i))?);
                rest.push((n.mac, n.customer_id, n.status));
            }
            Ok((creds, rest))
        })
        .await?
    };
    let read = started.elapsed();
    let hashes = resolve(&st, creds).await?;
    let subs: Vec<Subscriber> = rest
        .into_iter()
        .zip(hashes)
        .map(|((mac, customer_id, status), password_hash)| Subscriber {
            mac: mac.0,
            isp: isp.clone(),
            customer_id,
            password_hash,
            status: status.map_or(Status::Active, Status::from),
        })
        .collect();
    let hashed = started.elapsed();
    let added = st
        .registry(move |r| {
            r.add_hashed(&subs)
                .map_err(|e| ApiError::from_registry(e, ""))
        })
        .await?;
    tracing::debug!(
        added,
        read_ms = read.as_millis() as u64,
        hash_ms = (hashed - read).as_millis() as u64,
        store_ms = (started.elapsed() - hashed).as_millis() as u64,
        "api: bulk import"
    );
    ok(StatusCode::CREATED, json!({ "added": added }))
}

async fn get_subscriber(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Answer {
    let (isp, mac) = path(p)?;
    let mac = subscriber_key(&c, &isp, &mac)?;
    let (s, b) = st
        .registry(move |r| {
            let s = own(r, &isp, mac)?;
            let b = r.binding(mac).map_err(internal)?;
            Ok((s, b))
        })
        .await?;
    let mut v = serde_json::to_value(SubscriberOut::from(&s)).map_err(internal)?;
    v["binding"] = serde_json::to_value(b.as_ref().map(BindingOut::from)).map_err(internal)?;
    ok(StatusCode::OK, v)
}

/// Withdraws a binding the store no longer has from the running gateway's fast path, as
/// `ispmux subscriber suspend/remove` does; says what happened.
async fn withdraw(st: &AppState, b: Option<Binding>) -> serde_json::Value {
    let Some(b) = b else {
        return serde_json::Value::Null;
    };
    let (withdrawn, note) = match st.ask(ControlCommand::Revoke(b.mac)).await {
        Ok(ControlAnswer::Revoked(r)) if r.queued => (true, String::new()),
        Ok(ControlAnswer::Refused(r)) => (false, r.error),
        Ok(_) => (false, "the logon engine has stopped".into()),
        Err(e) => (false, e.to_string()),
    };
    let mut v = json!({ "ipv4": b.ipv4.to_string(), "withdrawn": withdrawn });
    if !withdrawn {
        v["note"] = format!("{note}; the binding goes at the gateway's next start").into();
    }
    v
}

async fn change_subscriber(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<(String, String)>, PathRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Answer {
    let (isp, mac) = path(p)?;
    let mac = subscriber_key(&c, &isp, &mac)?;
    let ch: ChangeIn = model::json(&model::body(b)?)?;
    if ch
        .customer_id
        .as_ref()
        .is_some_and(|id| id.trim().is_empty())
    {
        return Err(ApiError::invalid("customer_id", "empty"));
    }
    // Checked before any hashing: a stranger's MAC costs no Argon2 run.
    {
        let isp = isp.clone();
        st.registry(move |r| own(r, &isp, mac).map(drop)).await?;
    }
    let password_hash = match ch.password {
        Some(None) if ch.password_hash.is_none() => Some(None),
        Some(None) => {
            return Err(ApiError::invalid(
                "password_hash",
                "give password or password_hash, not both",
            ))
        }
        Some(Some(p)) => {
            let cred = credential(st.limits.cost, Some(p), ch.password_hash, None)?;
            Some(resolve(&st, vec![cred]).await?.pop().flatten())
        }
        None => match ch.password_hash {
            Some(h) => {
                let cred = credential(st.limits.cost, None, Some(h), None)?;
                Some(resolve(&st, vec![cred]).await?.pop().flatten())
            }
            None => None,
        },
    };
    let change = SubscriberChange {
        customer_id: ch.customer_id,
        password_hash,
        status: ch.status.map(Status::from),
    };
    let (s, b) = st
        .registry(move |r| {
            own(r, &isp, mac)?;
            let b = r
                .change_subscriber(mac, &change)
                .map_err(|e| ApiError::from_registry(e, ""))?;
            Ok((own(r, &isp, mac)?, b))
        })
        .await?;
    let mut v = serde_json::to_value(SubscriberOut::from(&s)).map_err(internal)?;
    v["binding_withdrawn"] = withdraw(&st, b).await;
    ok(StatusCode::OK, v)
}

/// Runs `f` on the route's subscriber once it is the caller's ISP's (else the 404 of a
/// missing one), on the registry's blocking thread; gives its MAC and what `f` returned.
async fn on_own_subscriber<T: Send + 'static>(
    st: &AppState,
    c: &Caller,
    p: Result<Path<(String, String)>, PathRejection>,
    f: impl FnOnce(&mut Registry, MacAddr) -> Result<T, RegistryError> + Send + 'static,
) -> Result<(MacAddr, T), ApiError> {
    let (isp, mac) = path(p)?;
    let mac = subscriber_key(c, &isp, &mac)?;
    let t = st
        .registry(move |r| {
            own(r, &isp, mac)?;
            f(r, mac).map_err(|e| ApiError::from_registry(e, ""))
        })
        .await?;
    Ok((mac, t))
}

async fn remove_subscriber(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Answer {
    let (mac, b) = on_own_subscriber(&st, &c, p, |r, mac| r.remove_subscriber(mac)).await?;
    let w = withdraw(&st, b).await;
    ok(
        StatusCode::OK,
        json!({ "removed": mac.to_string(), "binding_withdrawn": w }),
    )
}

async fn suspend(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Answer {
    let (mac, b) = on_own_subscriber(&st, &c, p, |r, mac| r.suspend_subscriber(mac)).await?;
    let w = withdraw(&st, b).await;
    ok(
        StatusCode::OK,
        json!({ "mac": mac.to_string(), "status": "suspended", "binding_withdrawn": w }),
    )
}

async fn resume(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Answer {
    let (mac, ()) =
        on_own_subscriber(&st, &c, p, |r, mac| r.set_status(mac, Status::Active)).await?;
    ok(
        StatusCode::OK,
        json!({ "mac": mac.to_string(), "status": "active" }),
    )
}

async fn bindings(State(st): St, Auth(c): Auth, p: Result<Path<String>, PathRejection>) -> Answer {
    let isp = path(p)?;
    visible_isp(&st, &c, &isp).await?;
    let all = st
        .registry(move |r| r.bindings_of(Some(&isp)).map_err(internal))
        .await?;
    let out: Vec<BindingOut> = all.iter().map(BindingOut::from).collect();
    ok(StatusCode::OK, json!({ "bindings": out }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefusalParams {
    #[serde(default)]
    limit: Option<u32>,
}

/// The most refusals one request lists.
const MAX_REFUSALS: u32 = 10_000;

async fn refusals_of(st: &AppState, isp: Option<String>, q: RefusalParams) -> Answer {
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_REFUSALS).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be 1 to {MAX_REFUSALS}"),
        ));
    }
    let all = st
        .registry(move |r| r.refusals_of(isp.as_deref(), limit).map_err(internal))
        .await?;
    let out: Vec<RefusalOut> = all.iter().map(RefusalOut::from).collect();
    ok(StatusCode::OK, json!({ "refusals": out }))
}

async fn isp_refusals(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<RefusalParams>, QueryRejection>,
) -> Answer {
    let isp = path(p)?;
    let q = query(q)?;
    visible_isp(&st, &c, &isp).await?;
    refusals_of(&st, Some(isp), q).await
}

async fn all_refusals(
    State(st): St,
    Auth(c): Auth,
    q: Result<Query<RefusalParams>, QueryRejection>,
) -> Answer {
    c.operator()?;
    let q = query(q)?;
    refusals_of(&st, None, q).await
}

/// Asks the gateway `cmd`: its answer, a refusal as 409, no answer as 503.
pub(crate) async fn ask(st: &AppState, cmd: ControlCommand) -> Result<ControlAnswer, ApiError> {
    match st.ask(cmd).await {
        Ok(ControlAnswer::Refused(r)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "refused by the gateway",
            r.error,
        )),
        Ok(a) => Ok(a),
        Err(e @ (AskError::Busy | AskError::Gone | AskError::Timeout)) => {
            Err(ApiError::unavailable(e.to_string()))
        }
    }
}

async fn counters(State(st): St, Auth(c): Auth, p: Result<Path<String>, PathRejection>) -> Answer {
    let isp = path(p)?;
    visible_isp(&st, &c, &isp).await?;
    match ask(&st, ControlCommand::Stats).await? {
        ControlAnswer::Stats(s) => ok(StatusCode::OK, CountersOut::of(&isp, &s.pipeline.isps)),
        other => Err(internal(format!("stats answered {other:?}"))),
    }
}

/// An operator's route that is one control command: the gateway's answer as
/// `ispmux ctl --json` prints it.
async fn control(st: &AppState, c: &Caller, cmd: ControlCommand) -> Answer {
    c.operator()?;
    let a = ask(st, cmd).await?;
    ok(StatusCode::OK, a.to_json())
}

async fn stats(State(st): St, Auth(c): Auth) -> Answer {
    control(&st, &c, ControlCommand::Stats).await
}

/// The configuration file read again and applied without stopping forwarding, as `ispmux
/// ctl reload` and SIGHUP do; a refusal (a located error, or what cannot change live) is a
/// 409 naming it.
async fn reload(State(st): St, Auth(c): Auth) -> Answer {
    c.operator()?;
    let _no_edit_meanwhile = match st.config_file() {
        Ok(f) => Some(f.hold().await),
        Err(_) => None,
    };
    control(&st, &c, ControlCommand::Reload).await
}

/// Prometheus's scrape, with the operator's token (a scrape config's `authorization`):
/// OpenMetrics text when the Accept header asks for it, else the text format 0.0.4.
async fn metrics(State(st): St, Auth(c): Auth, headers: HeaderMap) -> Answer {
    c.operator()?;
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let format = if openmetrics {
        Exposition::OpenMetrics
    } else {
        Exposition::Prometheus
    };
    match ask(&st, ControlCommand::Metrics(format)).await? {
        ControlAnswer::Metrics(text) => {
            Ok(([(header::CONTENT_TYPE, format.content_type())], text).into_response())
        }
        other => Err(internal(format!("metrics answered {other:?}"))),
    }
}

async fn suspend_csp(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<String>, PathRejection>,
) -> Answer {
    let csp = path(p)?;
    control(&st, &c, ControlCommand::Suspend(csp)).await
}

async fn resume_csp(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<String>, PathRejection>,
) -> Answer {
    let csp = path(p)?;
    control(&st, &c, ControlCommand::Resume(csp)).await
}

async fn list_tokens(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<String>, PathRejection>,
) -> Answer {
    c.operator()?;
    let isp = path(p)?;
    visible_isp(&st, &c, &isp).await?;
    let list = st
        .tokens(move |t| t.list(Some(&isp)).map_err(internal))
        .await?;
    ok(StatusCode::OK, json!({ "tokens": list }))
}

async fn issue_token(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<String>, PathRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Answer {
    c.operator()?;
    let isp = path(p)?;
    let bytes = model::body(b)?;
    let t: TokenIn = if bytes.iter().all(u8::is_ascii_whitespace) {
        TokenIn::default()
    } else {
        model::json(&bytes)?
    };
    visible_isp(&st, &c, &isp).await?;
    let (token, info) = st
        .tokens(move |s| {
            s.issue(&isp, &t.label).map_err(|e| match e {
                crate::token::TokenError::UnknownIsp(i) => ApiError::no_isp(&i),
                other => internal(other),
            })
        })
        .await?;
    ok(
        StatusCode::CREATED,
        json!({ "token": token, "id": info.id, "isp": info.isp, "label": info.label, "created": info.created }),
    )
}

async fn revoke_token(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<(String, String)>, PathRejection>,
) -> Answer {
    c.operator()?;
    let (isp, id) = path(p)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::invalid("id", format!("{id:?} is not a token id")))?;
    visible_isp(&st, &c, &isp).await?;
    let gone = st
        .tokens(move |t| t.revoke(Some(&isp), id).map_err(internal))
        .await?;
    if !gone {
        return Err(
            ApiError::new(StatusCode::NOT_FOUND, "not found", format!("no token {id}")).field("id"),
        );
    }
    ok(StatusCode::OK, json!({ "revoked": id }))
}
