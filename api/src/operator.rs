//! The operator's routes that change the configuration file: ISPs (with their FECs, labels
//! and DHCP servers), transit labels, and the capacity of the RADIUS proxy's client SPs. Each is an edit of
//! the file ([`crate::config_file`]) applied by a reload, so the file stays the one source
//! of truth and `ispmux check`, a restart and SIGHUP all see what the API did.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use ispmux_slowpath::registry::SubscriberQuery;
use serde::Deserialize;
use serde_json::{json, Map, Value as JsonValue};

use crate::confedit::{self, Located};
use crate::error::ApiError;
use crate::model;
use crate::routes::{ok, path, query, Auth};
use crate::state::AppState;

type St = State<Arc<AppState>>;
type Answer = Result<Response, ApiError>;

/// A JSON object body.
fn object(b: Result<Bytes, BytesRejection>) -> Result<Map<String, JsonValue>, ApiError> {
    model::json(&model::body(b)?)
}

/// ISP `isp`'s configuration: `GET /v1/isps/{isp}`.
pub(crate) async fn get_isp(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<String>, PathRejection>,
) -> Answer {
    c.operator()?;
    let isp = path(p)?;
    let doc = st.config_file()?.read().await?;
    match confedit::isp(&doc, &isp) {
        Some(v) => ok(StatusCode::OK, v),
        None => Err(ApiError::no_isp(&isp)),
    }
}

/// A new ISP: `POST /v1/isps`.
pub(crate) async fn create_isp(
    State(st): St,
    Auth(c): Auth,
    b: Result<Bytes, BytesRejection>,
) -> Answer {
    c.operator()?;
    let new = object(b)?;
    let name = match new.get("name") {
        Some(JsonValue::String(n)) if !n.trim().is_empty() => n.clone(),
        Some(_) => return Err(ApiError::invalid("name", "must be a non-empty string")),
        None => return Err(ApiError::invalid("name", "required")),
    };
    if !new.contains_key("id") {
        return Err(ApiError::invalid(
            "id",
            "required: the ISP's id in the tables",
        ));
    }
    let done = st
        .config_file()?
        .edit(&st, move |doc| {
            if confedit::isp_names(doc).contains(&name) {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "duplicate",
                    format!("ISP {name:?} already exists"),
                )
                .field("name"));
            }
            let at = confedit::put_isp(doc, &name, &new)?;
            Ok((confedit::isp(doc, &name), at))
        })
        .await?;
    ok(
        StatusCode::CREATED,
        json!({ "isp": done.value, "reload": done.reload }),
    )
}

/// A change to ISP `isp`, as a JSON merge patch (RFC 7396) of its configuration:
/// `PATCH /v1/isps/{isp}`.
pub(crate) async fn change_isp(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<String>, PathRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Answer {
    c.operator()?;
    let isp = path(p)?;
    let patch = object(b)?;
    if patch
        .get("name")
        .is_some_and(|n| n.as_str() != Some(isp.as_str()))
    {
        return Err(ApiError::invalid(
            "name",
            "an ISP is not renamed (its subscribers and tokens name it): create another",
        ));
    }
    let done = st
        .config_file()?
        .edit(&st, move |doc| {
            let mut v = confedit::isp(doc, &isp).ok_or_else(|| ApiError::no_isp(&isp))?;
            confedit::merge(&mut v, &JsonValue::Object(patch));
            let JsonValue::Object(new) = v else {
                return Err(ApiError::invalid("body", "must be an object"));
            };
            let at = confedit::put_isp(doc, &isp, &new)?;
            Ok((confedit::isp(doc, &isp), at))
        })
        .await?;
    ok(
        StatusCode::OK,
        json!({ "isp": done.value, "reload": done.reload }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RemoveParams {
    #[serde(default)]
    force: bool,
}

/// ISP `isp` removed: `DELETE /v1/isps/{isp}[?force=true]`. Refused (409) while it has
/// subscribers, in the store or as `[[tables.subscribers]]` rows, unless `force`: then
/// they go with it (their bindings released by the reload).
pub(crate) async fn remove_isp(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<String>, PathRejection>,
    q: Result<Query<RemoveParams>, QueryRejection>,
) -> Answer {
    c.operator()?;
    let isp = path(p)?;
    let force = query(q)?.force;
    let in_store = {
        let isp = isp.clone();
        st.registry(move |r| {
            r.page_subscribers(&SubscriberQuery {
                isp: Some(isp),
                status: None,
                customer_id_prefix: None,
                after: None,
                limit: 1,
            })
            .map(|p| !p.is_empty())
            .map_err(ApiError::internal)
        })
        .await?
    };
    let done = {
        let isp = isp.clone();
        st.config_file()?
            .edit(&st, move |doc| {
                let in_file = confedit::table_subscribers(doc, &isp) > 0;
                if (in_store || in_file) && !force {
                    return Err(ApiError::new(
                        StatusCode::CONFLICT,
                        "in use",
                        format!(
                            "ISP {isp:?} has subscribers (in the store, or [[tables.subscribers]] \
                             rows); remove them first, or add ?force=true to remove them with it"
                        ),
                    )
                    .field("isp"));
                }
                Ok((confedit::remove_isp(doc, &isp)?, Located::default()))
            })
            .await?
    };
    // An ISP only the store still knows (its entries gone from the file by hand) goes too.
    let removed = {
        let isp = isp.clone();
        let in_file = done.value;
        st.registry(move |r| {
            if !in_file && !r.has_isp(&isp).map_err(ApiError::internal)? {
                return Err(ApiError::no_isp(&isp));
            }
            r.remove_isp_with_subscribers(&isp)
                .map_err(ApiError::internal)
        })
        .await?
    };
    ok(
        StatusCode::OK,
        json!({ "removed": isp, "subscribers_removed": removed, "reload": done.reload }),
    )
}

/// The RADIUS proxy's client SPs, without their secrets: `GET /v1/client-sps`.
pub(crate) async fn list_csps(State(st): St, Auth(c): Auth) -> Answer {
    c.operator()?;
    let doc = st.config_file()?.read().await?;
    ok(
        StatusCode::OK,
        json!({ "client_sps": confedit::client_sps(&doc) }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CspChange {
    capacity: Map<String, JsonValue>,
}

/// A change to client SP `csp`'s capacity (`ports`, `connection_time_s`, `period`,
/// `suspended`), merged member by member: `PATCH /v1/client-sps/{csp}`.
pub(crate) async fn change_csp(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<String>, PathRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Answer {
    c.operator()?;
    let csp = path(p)?;
    let ch: CspChange = model::json(&model::body(b)?)?;
    let done = st
        .config_file()?
        .edit(&st, move |doc| {
            let at = confedit::patch_capacity(doc, &csp, &ch.capacity)?.ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not found",
                    format!("no client SP {csp:?}"),
                )
                .field("csp")
            })?;
            let now = confedit::client_sps(doc)
                .into_iter()
                .find(|c| c["name"] == csp.as_str());
            Ok((now, at))
        })
        .await?;
    ok(
        StatusCode::OK,
        json!({ "client_sp": done.value, "reload": done.reload }),
    )
}

/// Every incoming label of the file (`[[tables.ilm]]`), the ISPs' pop entries included:
/// `GET /v1/labels`.
pub(crate) async fn list_labels(State(st): St, Auth(c): Auth) -> Answer {
    c.operator()?;
    let doc = st.config_file()?.read().await?;
    ok(StatusCode::OK, json!({ "labels": confedit::labels(&doc) }))
}

fn label_param(p: Result<Path<String>, PathRejection>) -> Result<i64, ApiError> {
    let l = path(p)?;
    l.parse::<u32>()
        .map(i64::from)
        .map_err(|_| ApiError::invalid("label", format!("{l:?} is not a label")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransitIn {
    action: Map<String, JsonValue>,
}

/// A transit label (a static LSP's `swap`) written, new or replacing the old:
/// `PUT /v1/labels/{label}`.
pub(crate) async fn put_label(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<String>, PathRejection>,
    b: Result<Bytes, BytesRejection>,
) -> Answer {
    c.operator()?;
    let label = label_param(p)?;
    let t: TransitIn = model::json(&model::body(b)?)?;
    let done = st
        .config_file()?
        .edit(&st, move |doc| {
            let at = confedit::put_transit(doc, label, &t.action)?;
            let now = confedit::labels(doc)
                .into_iter()
                .find(|l| l["label"] == label);
            Ok((now, at))
        })
        .await?;
    ok(
        StatusCode::OK,
        json!({ "label": done.value, "reload": done.reload }),
    )
}

/// A transit label removed: `DELETE /v1/labels/{label}`.
pub(crate) async fn remove_label(
    State(st): St,
    Auth(c): Auth,
    p: Result<Path<String>, PathRejection>,
) -> Answer {
    c.operator()?;
    let label = label_param(p)?;
    let done = st
        .config_file()?
        .edit(&st, move |doc| {
            if !confedit::remove_transit(doc, label)? {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not found",
                    format!("no incoming label {label}"),
                )
                .field("label"));
            }
            Ok(((), Located::default()))
        })
        .await?;
    ok(
        StatusCode::OK,
        json!({ "removed": label, "reload": done.reload }),
    )
}
