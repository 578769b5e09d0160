//! Deserializers for the dataplane's plain types as the configuration writes them: the
//! dataplane has no serde, so the schema's text forms are defined here, once.

use std::fmt;

use ispmux_dataplane::wire::MacAddr;
use ispmux_dataplane::PortRole;
use serde::de::{self, Deserialize, Deserializer, Visitor};

use crate::ipv4_net::{IfAddr, Ipv4Net};

/// A value written as a string and parsed with `FromStr`, its error as the message.
fn parsed<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    s.parse().map_err(de::Error::custom)
}

/// `"02:00:00:00:00:01"` (or dash-separated).
pub(crate) fn mac<'de, D: Deserializer<'de>>(d: D) -> Result<MacAddr, D::Error> {
    parsed(d)
}

/// An optional [`mac`].
pub(crate) fn opt_mac<'de, D: Deserializer<'de>>(d: D) -> Result<Option<MacAddr>, D::Error> {
    mac(d).map(Some)
}

/// `["198.18.1.0/24", ...]`.
pub(crate) fn ipv4_nets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Ipv4Net>, D::Error> {
    #[derive(serde::Deserialize)]
    struct Net(#[serde(deserialize_with = "parsed")] Ipv4Net);
    Ok(Vec::<Net>::deserialize(d)?
        .into_iter()
        .map(|n| n.0)
        .collect())
}

/// `"198.18.1.0/24"`.
pub(crate) fn ipv4_net<'de, D: Deserializer<'de>>(d: D) -> Result<Ipv4Net, D::Error> {
    parsed(d)
}

/// An optional `"198.18.1.0/24"`.
pub(crate) fn opt_ipv4_net<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Ipv4Net>, D::Error> {
    parsed(d).map(Some)
}

/// `"198.18.9.1/30"` or `"198.18.9.1"` (a /32).
pub(crate) fn opt_if_addr<'de, D: Deserializer<'de>>(d: D) -> Result<Option<IfAddr>, D::Error> {
    parsed(d).map(Some)
}

/// `"access"`, `"core"`, `"handoff"` or `"unused"`.
pub(crate) fn opt_port_role<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PortRole>, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Role {
        Access,
        Core,
        Handoff,
        Unused,
    }
    Ok(Some(match Role::deserialize(d)? {
        Role::Access => PortRole::Access,
        Role::Core => PortRole::Core,
        Role::Handoff => PortRole::Handoff,
        Role::Unused => PortRole::Unused,
    }))
}

/// A port as tables name it: a `[[port]]` name. A number (ports were once given by index)
/// is refused with what to write instead.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PortName(pub String);

impl fmt::Display for PortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'de> Deserialize<'de> for PortName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = PortName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the name of a [[port]]")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PortName, E> {
                Ok(PortName(s.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<PortName, E> {
                Err(E::custom(numbered(n)))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<PortName, E> {
                Err(E::custom(numbered(n)))
            }
        }
        d.deserialize_any(V)
    }
}

/// What to say when a port is given by number where a name is expected.
pub(crate) fn numbered(n: impl fmt::Display) -> String {
    format!(
        "ports are named here, as in [[worker]]: write the [[port]] name (port = \"core\"), \
         not the number {n}"
    )
}
