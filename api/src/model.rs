//! The JSON the API reads and writes, and the reading of request bodies and parameters into
//! typed values with the field at fault named ([`ApiError`]).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use ispmux_gateway::report::{IspStats, PacketBytes};
use ispmux_slowpath::dhcp::MacAddr;
use ispmux_slowpath::registry::{Binding, Refusal, Status, Subscriber};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::ApiError;

/// A MAC address in JSON: six colon- or dash-separated hex octets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub MacAddr);

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Parsed from the borrowed text: a bulk import reads one per row.
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Mac;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a MAC address string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Mac, E> {
                s.parse().map(Mac).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// A subscriber's status in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusJson {
    /// May log on.
    Active,
    /// Logons refused.
    Suspended,
}

impl From<StatusJson> for Status {
    fn from(s: StatusJson) -> Status {
        match s {
            StatusJson::Active => Status::Active,
            StatusJson::Suspended => Status::Suspended,
        }
    }
}

/// A subscriber to register. The ISP is the one of the route, never the body's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSubscriberIn {
    /// Its MAC.
    pub mac: Mac,
    /// The ISP's customer id.
    pub customer_id: String,
    /// A password in clear, hashed by the server with the configured Argon2id cost.
    #[serde(default)]
    pub password: Option<String>,
    /// A password hashed already: an Argon2id PHC string of at least the configured cost.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// `active` (default) or `suspended`.
    #[serde(default)]
    pub status: Option<StatusJson>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A change to a subscriber; absent fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeIn {
    /// A new customer id.
    #[serde(default)]
    pub customer_id: Option<String>,
    /// A new password in clear; `null` removes the password.
    #[serde(default, deserialize_with = "present")]
    pub password: Option<Option<String>>,
    /// A new password hashed already (see [`NewSubscriberIn::password_hash`]).
    #[serde(default)]
    pub password_hash: Option<String>,
    /// A new status; `suspended` also withdraws the binding.
    #[serde(default)]
    pub status: Option<StatusJson>,
}

/// A new ISP token's note.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    /// What the token is for.
    #[serde(default)]
    pub label: String,
}

/// A subscriber as answered (the password hash never leaves the server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriberOut {
    /// Its MAC.
    pub mac: String,
    /// Its ISP.
    pub isp: String,
    /// The ISP's customer id.
    pub customer_id: String,
    /// `active` or `suspended`.
    pub status: &'static str,
    /// Whether a password is set.
    pub password: bool,
}

impl From<&Subscriber> for SubscriberOut {
    fn from(s: &Subscriber) -> Self {
        SubscriberOut {
            mac: s.mac.to_string(),
            isp: s.isp.clone(),
            customer_id: s.customer_id.clone(),
            status: s.status.as_str(),
            password: s.password_hash.is_some(),
        }
    }
}

fn unix(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A binding as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BindingOut {
    /// Subscriber MAC.
    pub mac: String,
    /// ISP.
    pub isp: String,
    /// Leased address.
    pub ipv4: String,
    /// Lease end, Unix seconds.
    pub expires: u64,
    /// The ISP's DHCP server that granted it.
    pub server: String,
    /// Access port index.
    pub port: u16,
    /// Outer VLAN (0: untagged).
    pub vlan: u16,
    /// Inner VLAN (0: none).
    pub inner_vlan: u16,
}

impl From<&Binding> for BindingOut {
    fn from(b: &Binding) -> Self {
        BindingOut {
            mac: b.mac.to_string(),
            isp: b.isp.clone(),
            ipv4: b.ipv4.to_string(),
            expires: unix(b.expires),
            server: b.server.to_string(),
            port: b.port,
            vlan: b.vlan,
            inner_vlan: b.inner_vlan,
        }
    }
}

/// A refused logon as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusalOut {
    /// When, Unix seconds.
    pub at: u64,
    /// Who.
    pub mac: String,
    /// Which ISP, when known.
    pub isp: Option<String>,
    /// Why.
    pub reason: String,
}

impl From<&Refusal> for RefusalOut {
    fn from(r: &Refusal) -> Self {
        RefusalOut {
            at: unix(r.at),
            mac: r.mac.to_string(),
            isp: r.isp.clone(),
            reason: r.reason.clone(),
        }
    }
}

/// One ISP's traffic counters through this node, by role and direction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CountersOut {
    /// The ISP.
    pub isp: String,
    /// Headend, subscriber to ISP.
    pub headend_up: PacketBytes,
    /// Headend, ISP to subscriber.
    pub headend_down: PacketBytes,
    /// Tailend, handed to the ISP.
    pub tailend_up: PacketBytes,
    /// Tailend, from the ISP.
    pub tailend_down: PacketBytes,
}

impl CountersOut {
    /// `isp`'s counters from the gateway's per-ISP list (zeros when it has none here).
    pub fn of(isp: &str, all: &[IspStats]) -> Self {
        all.iter()
            .find(|s| s.name == isp)
            .map(|s| CountersOut {
                isp: isp.to_owned(),
                headend_up: s.headend_up,
                headend_down: s.headend_down,
                tailend_up: s.tailend_up,
                tailend_down: s.tailend_down,
            })
            .unwrap_or_else(|| CountersOut {
                isp: isp.to_owned(),
                ..CountersOut::default()
            })
    }
}

/// The body's bytes, or the refusal of a body too large or cut short.
pub fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|e| {
        let status = e.status();
        let error = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too large"
        } else {
            "bad body"
        };
        ApiError::new(status, error, e.body_text()).field("body")
    })
}

/// Reads JSON into `T`, naming the field at fault (`[3].mac`, `status`).
pub fn json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Tracking the path costs on every field of a 100,000-row import; only a refused body
    // needs it, so that one is read again with it.
    if let Ok(v) = serde_json::from_slice(bytes) {
        return Ok(v);
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let r: Result<T, _> = serde_path_to_error::deserialize(de);
    match r {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                // Not JSON at all: no field is at fault, the body is.
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "malformed JSON",
                    inner.to_string(),
                )
                .field("body"));
            }
            let field = if path == "." { "body".to_owned() } else { path };
            Err(ApiError::invalid(field, inner.to_string()))
        }
    }
}

/// Reads a MAC from a path segment.
pub fn mac_param(s: &str) -> Result<MacAddr, ApiError> {
    s.parse()
        .map_err(|e: ispmux_slowpath::dhcp::MacParseError| ApiError::invalid("mac", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_the_field() {
        let e = json::<Vec<NewSubscriberIn>>(
            br#"[{"mac":"02:00:00:00:00:01","customer_id":"C1"},{"mac":"nope","customer_id":"C2"}]"#,
        )
        .expect_err("bad mac");
        assert_eq!(e.field.as_deref(), Some("[1].mac"), "{e:?}");
        let e = json::<NewSubscriberIn>(br#"{"mac":"02:00:00:00:00:01","customer_id":7}"#)
            .expect_err("type");
        assert_eq!(e.field.as_deref(), Some("customer_id"));
        let e =
            json::<NewSubscriberIn>(br#"{"mac":"02:00:00:00:00:01","customer_id":"C","isp":"b"}"#)
                .expect_err("isp never from the body");
        assert!(e.reason.contains("unknown field `isp`"), "{e:?}");
        let e = json::<NewSubscriberIn>(b"{").expect_err("malformed");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let c: ChangeIn = json(br#"{"password":null}"#).expect("null");
        assert_eq!(c.password, Some(None));
        let c: ChangeIn = json(b"{}").expect("empty");
        assert_eq!(c.password, None);
    }
}
