//! What a refused request answers: a status and `{ "error", "field", "reason" }`, the
//! field named when one is at fault. Every refusal of this API is one of these, so an ISP's
//! client reads one shape.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ispmux_slowpath::registry::RegistryError;
use serde::Serialize;

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    /// The HTTP status.
    #[serde(skip)]
    pub status: StatusCode,
    /// What kind of refusal, in a few words.
    pub error: &'static str,
    /// The request's field at fault (a JSON path, a query or path parameter), if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Why, for a person.
    pub reason: String,
    /// Seconds to wait before trying again (429).
    #[serde(skip)]
    pub retry_after: Option<u64>,
    /// Every problem the configuration check found in an operator's edit (422).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problems: Option<Vec<ConfigProblem>>,
}

/// A problem the configuration check found in the file an operator's edit would write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigProblem {
    /// The request's field it comes from (a JSON path), else the configuration key.
    pub field: String,
    /// The configuration key (`tables.isps[2].upstream.label`).
    pub key: String,
    /// Line and column in the file as it would have been written (0 when unknown).
    pub line: usize,
    /// See `line`.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl ApiError {
    /// A refusal with `status`.
    pub fn new(status: StatusCode, error: &'static str, reason: impl Into<String>) -> Self {
        ApiError {
            status,
            error,
            field: None,
            reason: reason.into(),
            retry_after: None,
            problems: None,
        }
    }

    /// Names the field at fault.
    pub fn field(mut self, f: impl Into<String>) -> Self {
        self.field = Some(f.into());
        self
    }

    /// 400: the request's content is wrong.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid", reason).field(field)
    }

    /// 404 for a subscriber: the same whether it does not exist or is another ISP's.
    pub fn no_subscriber(mac: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not found",
            format!("no subscriber {mac}"),
        )
        .field("mac")
    }

    /// 404 for an ISP: the same whether it does not exist or the token is another ISP's.
    pub fn no_isp(isp: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not found",
            format!("no ISP {isp:?}"),
        )
        .field("isp")
    }

    /// 403: the token may not do this (an ISP's token on an operator's route).
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this route needs the operator's token",
        )
    }

    /// 500 for a store failure; the details go to the log, not to the client.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        tracing::error!(error = %what, "api");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; see its log",
        )
    }

    /// 503: the running gateway did not answer.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", reason)
    }

    /// 422: the configuration check refused the file an operator's edit would write; the
    /// first problem is the refusal's field and reason, all of them are in `problems`.
    pub fn config(problems: Vec<ConfigProblem>) -> Self {
        let (field, reason) = problems.first().map_or_else(
            || {
                (
                    "body".to_owned(),
                    "refused by the configuration check".to_owned(),
                )
            },
            |p| (p.field.clone(), p.message.clone()),
        );
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid configuration",
            reason,
        )
        .field(field);
        e.problems = Some(problems);
        e
    }

    /// A registry error as the client should see it; `mac` is the subscriber the request
    /// named, if any.
    pub fn from_registry(e: RegistryError, field_prefix: &str) -> Self {
        let at = |f: &str| format!("{field_prefix}{f}");
        match e {
            RegistryError::UnknownIsp(i) => Self::no_isp(&i),
            RegistryError::DuplicateSubscriber(m) => Self::new(
                StatusCode::CONFLICT,
                "duplicate",
                format!("subscriber {m} already exists"),
            )
            .field(at("mac")),
            RegistryError::NoSuchSubscriber(m) => Self::no_subscriber(&m.to_string()),
            RegistryError::Invalid { field, message } => Self::invalid(at(field), message),
            RegistryError::Item { index, source } => {
                Self::from_registry(*source, &format!("{field_prefix}[{index}]."))
            }
            RegistryError::Csv { line, message } => Self::invalid(format!("line {line}"), message),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, axum::Json(&self)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}
