//! A bulk import's body: a JSON array of subscribers, or CSV with a header. Either way the
//! rows come out typed, or the first fault is named (`[3].mac`, `line 4.status`).

use crate::error::ApiError;
use crate::model::{self, Mac, NewSubscriberIn, StatusJson};

/// The rows of an import body for ISP `isp`: CSV when `csv`, else JSON.
pub fn rows(bytes: &[u8], isp: &str, csv: bool) -> Result<Vec<NewSubscriberIn>, ApiError> {
    if csv {
        csv_rows(bytes, isp)
    } else {
        model::json(bytes)
    }
}

/// A bulk import's rows from CSV with a header: `mac,customer_id` and optionally
/// `password`, `password_hash`, `status`, `isp` (which, when given, must be the route's).
fn csv_rows(bytes: &[u8], isp: &str) -> Result<Vec<NewSubscriberIn>, ApiError> {
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = rd
        .headers()
        .map_err(|e| ApiError::invalid("line 1", e.to_string()))?
        .clone();
    let known = [
        "mac",
        "customer_id",
        "password",
        "password_hash",
        "status",
        "isp",
    ];
    if let Some(h) = headers.iter().find(|h| !known.contains(h)) {
        return Err(ApiError::invalid(
            "line 1",
            format!("unknown column {h:?}; columns: {}", known.join(",")),
        ));
    }
    let col = |n: &str| headers.iter().position(|h| h == n);
    let (Some(c_mac), Some(c_cid)) = (col("mac"), col("customer_id")) else {
        return Err(ApiError::invalid(
            "line 1",
            "the header must name mac and customer_id",
        ));
    };
    let mut rows = Vec::new();
    for rec in rd.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            ApiError::invalid(format!("line {line}"), e.to_string())
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        let at = |f: &str| format!("line {line}.{f}");
        let get = |c: Option<usize>| c.and_then(|i| rec.get(i)).filter(|v| !v.is_empty());
        if let Some(other) = get(col("isp")).filter(|v| *v != isp) {
            return Err(ApiError::invalid(
                at("isp"),
                format!("{other:?} is not this route's ISP"),
            ));
        }
        let mac = get(Some(c_mac)).unwrap_or_default().parse().map_err(
            |e: ispmux_slowpath::dhcp::MacParseError| ApiError::invalid(at("mac"), e.to_string()),
        )?;
        let status = match get(col("status")) {
            None => None,
            Some("active") => Some(StatusJson::Active),
            Some("suspended") => Some(StatusJson::Suspended),
            Some(s) => {
                return Err(ApiError::invalid(
                    at("status"),
                    format!("{s:?} is neither active nor suspended"),
                ))
            }
        };
        rows.push(NewSubscriberIn {
            mac: Mac(mac),
            customer_id: get(Some(c_cid)).unwrap_or_default().to_owned(),
            password: get(col("password")).map(str::to_owned),
            password_hash: get(col("password_hash")).map(str::to_owned),
            status,
        });
    }
    Ok(rows)
}

/// Whether any body reads as rows or as a client's refusal naming a reason, never a panic
/// or a server error: the property the fuzz target and the proptest check.
pub fn reads_sanely(data: &[u8]) -> bool {
    [true, false]
        .iter()
        .all(|&csv| match rows(data, "isp-a", csv) {
            Ok(_) => true,
            Err(e) => e.status.is_client_error() && !e.reason.is_empty(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_read_alike() {
        let csv = rows(
            b"mac,customer_id,password,status,isp\n02:00:00:00:00:01,C1,pw,suspended,isp-a\n",
            "isp-a",
            true,
        )
        .expect("csv");
        let json = rows(
            br#"[{"mac":"02:00:00:00:00:01","customer_id":"C1","password":"pw","status":"suspended"}]"#,
            "isp-a",
            false,
        )
        .expect("json");
        assert_eq!(csv, json);
        let e = rows(
            b"mac,customer_id\n02:00:00:00:00:01,C1\nbad,C2\n",
            "isp-a",
            true,
        )
        .expect_err("bad mac");
        assert_eq!(e.field.as_deref(), Some("line 3.mac"));
    }

    proptest::proptest! {
        #[test]
        fn any_body_reads_or_is_refused(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            proptest::prop_assert!(reads_sanely(&data));
        }

        #[test]
        fn any_csv_like_text_reads_or_is_refused(text in "(mac|customer_id|password|status|isp|,|\n|[ -~]){0,80}") {
            proptest::prop_assert!(reads_sanely(text.as_bytes()));
        }
    }
}
