//! An ISP and the capacity of a client SP as JSON, read from and written into the
//! configuration file's TOML document with `toml_edit`: the file stays the one source of
//! truth, and what the operator wrote around the entries changed (comments, order, layout)
//! stays as written.
//!
//! An ISP's JSON is its `[[tables.isps]]` entry's keys as they are (`id`, `name`, `gateway`,
//! `upstream`, `downstream`, `handoff`, `ldp`), its `[[tables.ilm]]` entries whose action is
//! its (`labels`, the action's `isp` left out) and its `[[dhcp.isps]]` entry (`dhcp`, its
//! `name` left out). Keys are passed through, not checked here: the whole new file goes
//! through the configuration's own validation, whose located errors [`Located::field`]
//! turns back into the JSON's fields.

use serde_json::{Map, Value as Json};
use toml_edit::{ArrayOfTables, DocumentMut, InlineTable, Item, Table, TableLike, Value};

use crate::error::ApiError;

/// The keys of an ISP's JSON that are not keys of its `[[tables.isps]]` entry.
const LABELS: &str = "labels";
const DHCP: &str = "dhcp";

/// Where the entries an edit wrote are in the new document, to name a problem found there
/// by the JSON field it came from.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Located {
    /// The ISP's index in `tables.isps`.
    pub isp: Option<usize>,
    /// Its index in `dhcp.isps`.
    pub dhcp: Option<usize>,
    /// The indices in `tables.ilm` of its labels, in the order of `labels`.
    pub labels: Vec<usize>,
    /// The client SP's index in `radius.client_sp`.
    pub csp: Option<usize>,
    /// The transit label's index in `tables.ilm`.
    pub ilm: Option<usize>,
}

impl Located {
    /// The JSON field of the configuration key `key`: `tables.isps[2].upstream.label` is
    /// `upstream.label` when entry 2 is the one written; keys elsewhere stay as they are.
    pub fn field(&self, key: &str) -> String {
        let mut bases: Vec<(String, String)> = Vec::new();
        if let Some(i) = self.isp {
            bases.push((format!("tables.isps[{i}]"), String::new()));
        }
        if let Some(i) = self.dhcp {
            bases.push((format!("dhcp.isps[{i}]"), DHCP.into()));
        }
        for (j, i) in self.labels.iter().enumerate() {
            bases.push((format!("tables.ilm[{i}]"), format!("{LABELS}[{j}]")));
        }
        if let Some(i) = self.csp {
            bases.push((format!("radius.client_sp[{i}]"), String::new()));
        }
        if let Some(i) = self.ilm {
            bases.push((format!("tables.ilm[{i}]"), String::new()));
        }
        for (base, to) in bases {
            let Some(rest) = key.strip_prefix(&base) else {
                continue;
            };
            let rest = match rest.as_bytes().first() {
                None => "",
                Some(b'.') => &rest[1..],
                Some(b'[') => rest,
                Some(_) => continue,
            };
            return match (to.is_empty(), rest.is_empty()) {
                (true, true) => "body".into(),
                (true, false) => rest.into(),
                (false, true) => to,
                (false, false) if rest.starts_with('[') => format!("{to}{rest}"),
                (false, false) => format!("{to}.{rest}"),
            };
        }
        key.to_owned()
    }
}

/// 409: the file holds something the edit cannot work on (a hand-written shape this
/// module does not take apart).
fn unusable(what: impl Into<String>) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::CONFLICT,
        "configuration file",
        what.into(),
    )
}

/// A TOML item as JSON: tables (inline or not) as objects, date-times as strings.
pub fn to_json(item: &Item) -> Json {
    match item {
        Item::None => Json::Null,
        Item::Value(v) => value_json(v),
        Item::Table(t) => table_json(t),
        Item::ArrayOfTables(a) => Json::Array(a.iter().map(|t| table_json(t)).collect()),
    }
}

fn table_json(t: &dyn TableLike) -> Json {
    Json::Object(t.iter().map(|(k, v)| (k.to_owned(), to_json(v))).collect())
}

fn value_json(v: &Value) -> Json {
    match v {
        Value::String(s) => Json::String(s.value().clone()),
        Value::Integer(i) => Json::from(*i.value()),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f.value()).map_or(Json::Null, Json::Number)
        }
        Value::Boolean(b) => Json::Bool(*b.value()),
        Value::Datetime(d) => Json::String(d.value().to_string()),
        Value::Array(a) => Json::Array(a.iter().map(value_json).collect()),
        Value::InlineTable(t) => table_json(t),
    }
}

/// JSON as a TOML value at `field` (named in the refusal): objects become inline tables;
/// a `null` member is left out, a `null` in an array is refused (TOML has none).
pub fn to_toml(v: &Json, field: &str) -> Result<Value, ApiError> {
    Ok(match v {
        Json::Null => {
            return Err(ApiError::invalid(field, "null where a value is needed"));
        }
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(f)) if n.is_f64() => Value::from(f),
            _ => return Err(ApiError::invalid(field, format!("{n} is out of range"))),
        },
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(a) => {
            let mut out = toml_edit::Array::new();
            for (i, e) in a.iter().enumerate() {
                out.push(to_toml(e, &format!("{field}[{i}]"))?);
            }
            Value::Array(out)
        }
        Json::Object(m) => {
            let mut t = InlineTable::new();
            for (k, e) in ordered(m) {
                if !e.is_null() {
                    t.insert(k, to_toml(e, &join(field, k))?);
                }
            }
            Value::InlineTable(t)
        }
    })
}

fn join(base: &str, key: &str) -> String {
    if base.is_empty() {
        key.to_owned()
    } else {
        format!("{base}.{key}")
    }
}

/// RFC 7396 JSON merge patch: members of `patch` replace `target`'s, `null` removes them,
/// objects merge member by member.
pub fn merge(target: &mut Json, patch: &Json) {
    let Json::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Json::Object(Map::new());
    }
    if let Json::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Json::Null), v);
            }
        }
    }
}

/// The array of tables at `path` (`tables.isps`), if the document has one.
fn aot<'d>(doc: &'d DocumentMut, path: &[&str]) -> Option<&'d ArrayOfTables> {
    let mut item = doc.as_item();
    for k in path {
        item = item.get(k)?;
    }
    item.as_array_of_tables()
}

/// The array of tables at `path`, made (with the tables on the way) when missing.
fn aot_mut<'d>(doc: &'d mut DocumentMut, path: &[&str]) -> Result<&'d mut ArrayOfTables, ApiError> {
    let (last, parents) = path.split_last().expect("a path");
    let mut t: &mut Table = doc.as_table_mut();
    for k in parents {
        let item = t.entry(k).or_insert_with(|| {
            let mut n = Table::new();
            n.set_implicit(true);
            Item::Table(n)
        });
        t = item
            .as_table_mut()
            .ok_or_else(|| unusable(format!("[{k}] is not a table in the file")))?;
    }
    t.entry(last)
        .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or_else(|| unusable(format!("{} is not an array of tables", path.join("."))))
}

fn named(a: &ArrayOfTables, name: &str) -> Option<usize> {
    a.iter()
        .position(|t| t.get("name").and_then(Item::as_str) == Some(name))
}

fn int(item: Option<&Item>) -> Option<i64> {
    item.and_then(Item::as_integer)
}

/// The ISP of an `[[tables.ilm]]` entry's action.
fn ilm_isp(t: &Table) -> Option<i64> {
    t.get("action")
        .and_then(Item::as_table_like)
        .and_then(|a| int(a.get("isp")))
}

/// The names of the ISPs in the file: `[[tables.isps]]` and `[[dhcp.isps]]`.
pub fn isp_names(doc: &DocumentMut) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for path in [&["tables", "isps"], &["dhcp", "isps"]] {
        for t in aot(doc, path).into_iter().flat_map(ArrayOfTables::iter) {
            if let Some(n) = t.get("name").and_then(Item::as_str) {
                if !out.iter().any(|o| o == n) {
                    out.push(n.to_owned());
                }
            }
        }
    }
    out
}

/// ISP `name`'s JSON, or None when the file has no entry of that name.
pub fn isp(doc: &DocumentMut, name: &str) -> Option<Json> {
    let table = aot(doc, &["tables", "isps"]).and_then(|a| a.get(named(a, name)?));
    let dhcp = aot(doc, &["dhcp", "isps"]).and_then(|a| a.get(named(a, name)?));
    if table.is_none() && dhcp.is_none() {
        return None;
    }
    let mut out = table.map_or_else(
        || Map::from_iter([("name".to_owned(), Json::from(name))]),
        |t| match table_json(t) {
            Json::Object(m) => m,
            _ => Map::new(),
        },
    );
    let id = table.and_then(|t| int(t.get("id")));
    out.insert(LABELS.into(), Json::Array(labels_of(doc, id)));
    let dhcp = dhcp.map_or(Json::Null, |t| {
        let mut j = table_json(t);
        if let Json::Object(m) = &mut j {
            m.remove("name");
        }
        j
    });
    out.insert(DHCP.into(), dhcp);
    Some(Json::Object(out))
}

fn labels_of(doc: &DocumentMut, id: Option<i64>) -> Vec<Json> {
    let Some(id) = id else { return Vec::new() };
    aot(doc, &["tables", "ilm"])
        .into_iter()
        .flat_map(ArrayOfTables::iter)
        .filter(|t| ilm_isp(t) == Some(id))
        .map(|t| {
            let mut j = table_json(t);
            if let Some(Json::Object(a)) = j.get_mut("action") {
                a.remove("isp");
            }
            j
        })
        .collect()
}

/// The order keys of a new entry are written in: the configuration's own, more or less;
/// keys not listed follow alphabetically.
const ORDER: [&str; 18] = [
    "id",
    "name",
    "kind",
    "label",
    "tc",
    "port",
    "vlan",
    "next_hop",
    "out_label",
    "router",
    "router_mac",
    "gateway",
    "upstream",
    "downstream",
    "handoff",
    "ldp",
    "action",
    "isp",
];

fn ordered(m: &Map<String, Json>) -> Vec<(&String, &Json)> {
    let mut v: Vec<_> = m.iter().collect();
    v.sort_by_key(|(k, _)| ORDER.iter().position(|o| o == k).unwrap_or(ORDER.len()));
    v
}

/// Writes `value` at `key` of `t` unless it is there already: a table there is updated
/// member by member, any other value replaced keeping its comments; `None` removes the key.
fn set(
    t: &mut dyn TableLike,
    key: &str,
    value: Option<&Json>,
    field: &str,
) -> Result<(), ApiError> {
    let old = t.get(key);
    match value {
        None | Some(Json::Null) => {
            t.remove(key);
        }
        Some(v) if old.map(to_json).as_ref() == Some(v) => {}
        Some(Json::Object(m)) if old.is_some_and(|o| o.is_table_like()) => {
            let item = t.get_mut(key).expect("there");
            let inline = item.is_inline_table();
            let inner = item.as_table_like_mut().expect("table-like");
            let before = inner.len();
            let reshaped = update(inner, m, field, &[])?;
            if inline && (reshaped || inner.len() != before) {
                // Spacing of the old last member would show before a new one.
                inner.fmt();
            }
        }
        Some(v) => {
            let mut new = to_toml(v, field)?;
            if let Some(Item::Value(o)) = old {
                *new.decor_mut() = o.decor().clone();
            }
            t.insert(key, Item::Value(new));
        }
    }
    Ok(())
}

/// Makes table `t` hold `m`'s members (but `keep`'s keys, left alone); true when a key
/// was removed.
fn update(
    t: &mut dyn TableLike,
    m: &Map<String, Json>,
    field: &str,
    keep: &[&str],
) -> Result<bool, ApiError> {
    let gone: Vec<String> = t
        .iter()
        .map(|(k, _)| k.to_owned())
        .filter(|k| !m.contains_key(k) && !keep.contains(&k.as_str()))
        .collect();
    for k in &gone {
        t.remove(k);
    }
    for (k, v) in ordered(m) {
        if !keep.contains(&k.as_str()) {
            set(t, k, Some(v), &join(field, k))?;
        }
    }
    Ok(!gone.is_empty())
}

/// Writes ISP `name` (an existing one, or a new one when the file has none of that name)
/// as `new`, its whole JSON ([`isp`]'s shape; members left out are removed). Only what
/// differs is rewritten.
pub fn put_isp(
    doc: &mut DocumentMut,
    name: &str,
    new: &Map<String, Json>,
) -> Result<Located, ApiError> {
    let old_id = aot(doc, &["tables", "isps"])
        .and_then(|a| a.get(named(a, name)?))
        .and_then(|t| int(t.get("id")));
    let mut at = Located::default();
    // [[tables.isps]]
    let isps = aot_mut(doc, &["tables", "isps"])?;
    let i = named(isps, name).unwrap_or_else(|| {
        let mut t = Table::new();
        t.insert("name", toml_edit::value(name));
        isps.push(t);
        isps.len() - 1
    });
    at.isp = Some(i);
    let t = isps.get_mut(i).expect("just found or pushed");
    update(t, new, "", &["name", LABELS, DHCP])?;
    // [[tables.ilm]]: the ISP's labels, under its (new) id.
    let new_id = new.get("id").cloned().unwrap_or(Json::Null);
    let labels = match new.get(LABELS) {
        None | Some(Json::Null) => &[][..],
        Some(Json::Array(a)) => &a[..],
        Some(_) => return Err(ApiError::invalid(LABELS, "must be an array")),
    };
    let old_labels = labels_of(doc, old_id);
    let id_same = old_id.map(Json::from) == Some(new_id.clone());
    if !(id_same && old_labels == labels) {
        if old_id.is_some() && aot(doc, &["tables", "ilm"]).is_some() {
            aot_mut(doc, &["tables", "ilm"])?.retain(|t| ilm_isp(t) != old_id);
        }
        if !labels.is_empty() {
            let ilm = aot_mut(doc, &["tables", "ilm"])?;
            for (j, l) in labels.iter().enumerate() {
                let field = format!("{LABELS}[{j}]");
                let Json::Object(m) = l else {
                    return Err(ApiError::invalid(field, "must be an object"));
                };
                let mut t = Table::new();
                for (k, v) in ordered(m) {
                    if k == "action" && !v.is_null() {
                        let Json::Object(a) = v else {
                            return Err(ApiError::invalid(join(&field, k), "must be an object"));
                        };
                        let mut a = a.clone();
                        a.insert("isp".into(), new_id.clone());
                        set(&mut t, k, Some(&Json::Object(a)), &join(&field, k))?;
                    } else {
                        set(&mut t, k, Some(v), &join(&field, k))?;
                    }
                }
                ilm.push(t);
                at.labels.push(ilm.len() - 1);
            }
        }
    } else {
        at.labels = aot(doc, &["tables", "ilm"])
            .into_iter()
            .flat_map(ArrayOfTables::iter)
            .enumerate()
            .filter(|(_, t)| ilm_isp(t) == old_id)
            .map(|(i, _)| i)
            .collect();
    }
    // [[dhcp.isps]]
    match new.get(DHCP) {
        None | Some(Json::Null) => {
            if let Some(a) = aot(doc, &["dhcp", "isps"]) {
                if let Some(j) = named(a, name) {
                    aot_mut(doc, &["dhcp", "isps"])?.remove(j);
                }
            }
        }
        Some(Json::Object(m)) => {
            let a = aot_mut(doc, &["dhcp", "isps"])?;
            let j = named(a, name).unwrap_or_else(|| {
                let mut t = Table::new();
                t.insert("name", toml_edit::value(name));
                a.push(t);
                a.len() - 1
            });
            at.dhcp = Some(j);
            if m.contains_key("name") {
                return Err(ApiError::invalid(
                    "dhcp.name",
                    "the DHCP entry takes the ISP's name; leave it out",
                ));
            }
            let t = a.get_mut(j).expect("just found or pushed");
            update(t, m, DHCP, &["name"])?;
        }
        Some(_) => return Err(ApiError::invalid(DHCP, "must be an object or null")),
    }
    Ok(at)
}

/// Removes ISP `name`'s entries: `[[tables.isps]]`, its labels, `[[dhcp.isps]]`, and the
/// `[[tables.subscribers]]` rows of its id. False when the file has none.
pub fn remove_isp(doc: &mut DocumentMut, name: &str) -> Result<bool, ApiError> {
    let id = aot(doc, &["tables", "isps"])
        .and_then(|a| a.get(named(a, name)?))
        .and_then(|t| int(t.get("id")));
    let mut found = false;
    for path in [&["tables", "isps"], &["dhcp", "isps"]] {
        if let Some(j) = aot(doc, path).and_then(|a| named(a, name)) {
            aot_mut(doc, path)?.remove(j);
            found = true;
        }
    }
    if let Some(id) = id {
        if aot(doc, &["tables", "ilm"]).is_some() {
            aot_mut(doc, &["tables", "ilm"])?.retain(|t| ilm_isp(t) != Some(id));
        }
        if aot(doc, &["tables", "subscribers"]).is_some() {
            aot_mut(doc, &["tables", "subscribers"])?.retain(|t| int(t.get("isp")) != Some(id));
        }
    }
    Ok(found)
}

/// The `[[tables.subscribers]]` rows of ISP `name`'s id.
pub fn table_subscribers(doc: &DocumentMut, name: &str) -> usize {
    let id = aot(doc, &["tables", "isps"])
        .and_then(|a| a.get(named(a, name)?))
        .and_then(|t| int(t.get("id")));
    aot(doc, &["tables", "subscribers"])
        .into_iter()
        .flat_map(ArrayOfTables::iter)
        .filter(|t| id.is_some() && int(t.get("isp")) == id)
        .count()
}

/// Every incoming label of `[[tables.ilm]]`, as the file has it.
pub fn labels(doc: &DocumentMut) -> Vec<Json> {
    aot(doc, &["tables", "ilm"])
        .into_iter()
        .flat_map(ArrayOfTables::iter)
        .map(|t| table_json(t))
        .collect()
}

/// The index in `tables.ilm` of incoming label `label`, refused unless it is a transit
/// (`swap`) entry: an ISP's pop entries are its `labels`, changed with the ISP.
fn transit(doc: &DocumentMut, label: i64) -> Result<Option<usize>, ApiError> {
    let Some(a) = aot(doc, &["tables", "ilm"]) else {
        return Ok(None);
    };
    let Some(i) = a.iter().position(|t| int(t.get("label")) == Some(label)) else {
        return Ok(None);
    };
    let kind = a
        .get(i)
        .and_then(|t| t.get("action"))
        .and_then(Item::as_table_like)
        .and_then(|t| t.get("kind"))
        .and_then(Item::as_str);
    if kind != Some("swap") {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "an ISP's label",
            format!(
                "label {label} is an ISP's (tables.ilm[{i}]); change it with the ISP's `labels`"
            ),
        )
        .field("label"));
    }
    Ok(Some(i))
}

/// Writes transit label `label` with `action` (a `swap`), new or replacing the old one.
pub fn put_transit(
    doc: &mut DocumentMut,
    label: i64,
    action: &Map<String, Json>,
) -> Result<Located, ApiError> {
    if action.get("kind").and_then(Json::as_str) != Some("swap") {
        return Err(ApiError::invalid(
            "action.kind",
            "must be \"swap\": an ISP's labels are changed with the ISP",
        ));
    }
    let found = transit(doc, label)?;
    let a = aot_mut(doc, &["tables", "ilm"])?;
    let i = found.unwrap_or_else(|| {
        let mut t = Table::new();
        t.insert("label", toml_edit::value(label));
        a.push(t);
        a.len() - 1
    });
    let t = a.get_mut(i).expect("found or pushed");
    set(t, "action", Some(&Json::Object(action.clone())), "action")?;
    Ok(Located {
        ilm: Some(i),
        ..Located::default()
    })
}

/// Removes transit label `label`; false when the file has none.
pub fn remove_transit(doc: &mut DocumentMut, label: i64) -> Result<bool, ApiError> {
    match transit(doc, label)? {
        Some(i) => {
            aot_mut(doc, &["tables", "ilm"])?.remove(i);
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The keys of a client SP shown: never its secrets (the virtual subscriber's password,
/// the home servers' shared secrets).
const CSP_SHOWN: [&str; 6] = [
    "name",
    "realms",
    "called_station_id",
    "nas_identifier",
    "strip_realm",
    "capacity",
];

/// The client SPs of `[radius]`, without secrets.
pub fn client_sps(doc: &DocumentMut) -> Vec<Json> {
    aot(doc, &["radius", "client_sp"])
        .into_iter()
        .flat_map(ArrayOfTables::iter)
        .map(|t| {
            let mut m = Map::new();
            for k in CSP_SHOWN {
                if let Some(v) = t.get(k) {
                    m.insert(k.to_owned(), to_json(v));
                }
            }
            let servers: Vec<Json> = t
                .get("home_servers")
                .map(to_json)
                .and_then(|j| match j {
                    Json::Array(a) => Some(a),
                    _ => None,
                })
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.get("address").cloned().unwrap_or(Json::Null))
                .collect();
            m.insert("home_servers".into(), Json::Array(servers));
            Json::Object(m)
        })
        .collect()
}

/// Merges `patch` into client SP `csp`'s `capacity` (members replace, `null` removes);
/// None when the file has no such client SP.
pub fn patch_capacity(
    doc: &mut DocumentMut,
    csp: &str,
    patch: &Map<String, Json>,
) -> Result<Option<Located>, ApiError> {
    let Some(i) = aot(doc, &["radius", "client_sp"]).and_then(|a| named(a, csp)) else {
        return Ok(None);
    };
    let a = aot_mut(doc, &["radius", "client_sp"])?;
    let t = a.get_mut(i).expect("found");
    let cap = t
        .entry("capacity")
        .or_insert_with(|| Item::Value(Value::InlineTable(InlineTable::new())))
        .as_table_like_mut()
        .ok_or_else(|| unusable(format!("radius.client_sp[{i}].capacity is not a table")))?;
    let before = cap.len();
    for (k, v) in ordered(patch) {
        set(cap, k, Some(v), &join("capacity", k))?;
    }
    if cap.len() != before {
        if let Some(c) = t.get_mut("capacity").and_then(Item::as_inline_table_mut) {
            c.fmt();
        }
    }
    Ok(Some(Located {
        csp: Some(i),
        ..Located::default()
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const FILE: &str = r#"# The gateway.
[[port]]
name = "core"

[[tables.isps]]
id = 1
name = "isp-a"  # the first
upstream = { label = 1001, port = "core", next_hop = "02:00:00:00:00:01" }

# B, going soon.
[[tables.isps]]
id = 2
name = "isp-b"

[[tables.ilm]]
label = 4001
action = { kind = "pop_deliver", isp = 1 }

[[tables.ilm]]
label = 4002
action = { kind = "pop_deliver", isp = 2 }

[dhcp]
relay_address = "198.18.0.1"

[[dhcp.isps]]
name = "isp-a"
servers = ["198.18.0.2"]

[[radius.client_sp]]
name = "csp1"
virtual_password = "secret"
home_servers = [{ address = "127.0.0.1", secret = "s" }]
capacity = { ports = 10 } # rented
"#;

    fn doc() -> DocumentMut {
        FILE.parse().expect("toml")
    }

    #[test]
    fn an_isp_reads_as_its_entries() {
        let v = isp(&doc(), "isp-a").expect("there");
        assert_eq!(
            v,
            json!({
                "id": 1, "name": "isp-a",
                "upstream": { "label": 1001, "port": "core", "next_hop": "02:00:00:00:00:01" },
                "labels": [{ "label": 4001, "action": { "kind": "pop_deliver" } }],
                "dhcp": { "servers": ["198.18.0.2"] },
            })
        );
        assert_eq!(isp(&doc(), "isp-b").expect("there")["dhcp"], Json::Null);
        assert!(isp(&doc(), "isp-z").is_none());
        assert_eq!(isp_names(&doc()), ["isp-a", "isp-b"]);
    }

    /// Writing back what was read changes not a byte; a change rewrites only its value.
    #[test]
    fn writes_only_what_differs_keeping_comments() {
        let mut d = doc();
        let v = isp(&d, "isp-a").expect("there");
        put_isp(&mut d, "isp-a", v.as_object().expect("object")).expect("put");
        assert_eq!(d.to_string(), FILE);
        let mut v = v;
        merge(&mut v, &json!({ "upstream": { "label": 1011 } }));
        let at = put_isp(&mut d, "isp-a", v.as_object().expect("object")).expect("put");
        assert_eq!(d.to_string(), FILE.replace("label = 1001", "label = 1011"));
        assert_eq!((at.isp, at.dhcp, at.labels), (Some(0), Some(0), vec![0]));
    }

    #[test]
    fn a_new_isp_goes_after_the_others_with_its_labels_and_dhcp() {
        let mut d = doc();
        let new = json!({
            "id": 3, "name": "isp-c", "gateway": "198.18.3.1",
            "labels": [{ "label": 4003, "action": { "kind": "pop_deliver" } }],
            "dhcp": { "servers": ["198.18.3.2"] },
        });
        let at = put_isp(&mut d, "isp-c", new.as_object().expect("object")).expect("put");
        assert_eq!(
            (at.isp, at.dhcp, at.labels.clone()),
            (Some(2), Some(1), vec![2])
        );
        let text = d.to_string();
        let c = text.find("name = \"isp-c\"").expect("isp-c");
        assert!(
            text.find("name = \"isp-b\"").expect("b") < c
                && c < text.find("[[tables.ilm]]").expect("ilm"),
            "{text}"
        );
        assert!(
            text.contains("action = { kind = \"pop_deliver\", isp = 3 }"),
            "{text}"
        );
        assert_eq!(isp(&d, "isp-c").expect("there"), new);
        assert_eq!(at.field("tables.isps[2].gateway"), "gateway");
        assert_eq!(at.field("tables.isps[2]"), "body");
        assert_eq!(
            at.field("tables.isps[20].gateway"),
            "tables.isps[20].gateway"
        );
        assert_eq!(at.field("tables.ilm[2].action.isp"), "labels[0].action.isp");
        assert_eq!(at.field("dhcp.isps[1].servers[0]"), "dhcp.servers[0]");
        assert_eq!(at.field("tables.isps[1].id"), "tables.isps[1].id");
    }

    #[test]
    fn a_new_id_carries_the_labels_and_removal_takes_everything() {
        let mut d = doc();
        let mut v = isp(&d, "isp-b").expect("there");
        merge(&mut v, &json!({ "id": 7 }));
        put_isp(&mut d, "isp-b", v.as_object().expect("object")).expect("put");
        assert_eq!(isp(&d, "isp-b").expect("there")["labels"][0]["label"], 4002);
        assert!(d.to_string().contains("isp = 7"));
        assert!(remove_isp(&mut d, "isp-a").expect("remove"));
        assert!(!remove_isp(&mut d, "isp-a").expect("remove"));
        let text = d.to_string();
        assert!(!text.contains("isp-a") && !text.contains("4001"), "{text}");
        assert!(text.starts_with("# The gateway."), "{text}");
    }

    #[test]
    fn client_sps_show_no_secret_and_take_capacity() {
        let mut d = doc();
        let l = client_sps(&d);
        assert_eq!(l[0]["capacity"], json!({ "ports": 10 }));
        assert_eq!(l[0]["home_servers"], json!(["127.0.0.1"]));
        assert!(!Json::Array(l).to_string().contains("secret"));
        let at = patch_capacity(
            &mut d,
            "csp1",
            json!({ "ports": 20, "period": "day" })
                .as_object()
                .expect("object"),
        )
        .expect("patch")
        .expect("there");
        assert!(
            d.to_string()
                .contains("capacity = { ports = 20, period = \"day\" } # rented"),
            "{d}"
        );
        assert_eq!(
            at.field("radius.client_sp[0].capacity.ports"),
            "capacity.ports"
        );
        assert!(patch_capacity(&mut d, "nope", &Map::new())
            .expect("ok")
            .is_none());
    }

    #[test]
    fn transit_labels_are_swaps_and_pop_entries_stay_the_isps() {
        let mut d = doc();
        assert_eq!(labels(&d).len(), 2);
        let swap =
            json!({ "kind": "swap", "out_label": 5001, "port": "core", "next_hop": "198.18.0.9" });
        let at = put_transit(&mut d, 5000, swap.as_object().expect("object")).expect("put");
        assert_eq!(at.field("tables.ilm[2].action.port"), "action.port");
        assert_eq!(labels(&d)[2], json!({ "label": 5000, "action": swap }));
        let e = put_transit(&mut d, 4001, swap.as_object().expect("object")).expect_err("an ISP's");
        assert_eq!(e.field.as_deref(), Some("label"));
        let pop = json!({ "kind": "pop_deliver", "isp": 1 });
        assert!(put_transit(&mut d, 5000, pop.as_object().expect("object")).is_err());
        assert!(remove_transit(&mut d, 4001).is_err());
        assert!(remove_transit(&mut d, 5000).expect("remove"));
        assert!(!remove_transit(&mut d, 5000).expect("gone"));
        assert_eq!(d.to_string(), FILE);
    }

    #[test]
    fn json_and_toml_meet() {
        assert!(to_toml(&json!([1, null]), "x").is_err());
        assert!(to_toml(&json!(u64::MAX), "x").is_err());
        let v = to_toml(&json!({ "a": 1.5, "b": null, "c": [true] }), "x").expect("toml");
        assert_eq!(v.to_string().trim(), "{ a = 1.5, c = [true] }");
        let mut t = json!({ "a": { "b": 1, "c": 2 } });
        merge(&mut t, &json!({ "a": { "b": null, "d": 3 } }));
        assert_eq!(t, json!({ "a": { "c": 2, "d": 3 } }));
    }
}
