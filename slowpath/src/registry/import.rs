//! Bulk registration from CSV (`ispmux subscriber import FILE`), as an ISP hands over its
//! customer list. Columns, with a header row: `mac,isp,customer_id,password[,status]`;
//! `password` may be empty, `status` is `active` (default) or `suspended`. All rows or none
//! are imported, so a failed import can simply be fixed and rerun. Every row has exactly the
//! header's fields: a missing or extra field (a stray comma, a password with a comma in it)
//! would otherwise shift or drop a value silently.

use std::io::Read;

use super::{NewSubscriber, Registry, RegistryError, Status};

/// Imports subscribers from CSV; returns how many were added.
pub fn import_csv<R: Read>(reg: &mut Registry, input: R) -> Result<usize, RegistryError> {
    reg.with_bulk_cache(|reg| import_now(reg, input))
}

fn import_now<R: Read>(reg: &mut Registry, input: R) -> Result<usize, RegistryError> {
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let csv_err = |line: u64, message: String| RegistryError::Csv { line, message };
    let headers = rd.headers().map_err(|e| csv_err(1, e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(c_mac), Some(c_isp), Some(c_cid)) = (col("mac"), col("isp"), col("customer_id"))
    else {
        return Err(csv_err(
            1,
            "header must name mac, isp, customer_id (and optionally password, status)".into(),
        ));
    };
    let (c_pw, c_status) = (col("password"), col("status"));
    let cost = reg.cost();
    let tx = reg.write_transaction()?;
    let mut added = 0;
    for rec in rd.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            csv_err(line, e.to_string())
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rec.len() != headers.len() {
            return Err(csv_err(
                line,
                format!(
                    "{} field(s) where the header has {} ({})",
                    rec.len(),
                    headers.len(),
                    headers.iter().collect::<Vec<_>>().join(",")
                ),
            ));
        }
        let field = |i: Option<usize>| i.and_then(|i| rec.get(i)).unwrap_or("");
        let mac = field(Some(c_mac))
            .parse()
            .map_err(|e: crate::dhcp::MacParseError| csv_err(line, e.to_string()))?;
        let status = match field(c_status) {
            "" => Status::Active,
            s => s
                .parse()
                .map_err(|e: RegistryError| csv_err(line, e.to_string()))?,
        };
        let pw = field(c_pw);
        let s = NewSubscriber {
            mac,
            isp: field(Some(c_isp)).to_owned(),
            customer_id: field(Some(c_cid)).to_owned(),
            password: (!pw.is_empty()).then(|| pw.to_owned()),
            status,
        };
        Registry::insert_subscriber(&tx, &s, cost).map_err(|e| csv_err(line, e.to_string()))?;
        added += 1;
    }
    tx.commit()?;
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Isp, PasswordCost};

    fn reg() -> Registry {
        let mut r = Registry::open_in_memory()
            .expect("open")
            .with_password_cost(PasswordCost::TEST);
        r.upsert_isp(&Isp {
            name: "isp-a".into(),
            label: None,
            dhcp_servers: vec![],
        })
        .expect("isp");
        r
    }

    #[test]
    fn rows_with_a_missing_or_extra_field_name_their_line() {
        for (what, row) in [
            ("missing", "02:00:00:00:00:02,isp-a,C2"),
            ("extra", "02:00:00:00:00:02,isp-a,C2,pw,active,x"),
        ] {
            let mut r = reg();
            let text = format!(
                "mac,isp,customer_id,password,status\n02:00:00:00:00:01,isp-a,C1,pw,\n{row}\n"
            );
            match import_csv(&mut r, text.as_bytes()) {
                Err(RegistryError::Csv { line: 3, message }) => assert!(
                    message.contains("where the header has 5"),
                    "{what}: {message}"
                ),
                other => panic!("{what}: want a line-3 error, got {other:?}"),
            }
        }
    }
}
