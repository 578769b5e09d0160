//! The API against a store on disk and a gateway stand-in: what each route does, its
//! refusals, its authentication, and the OpenAPI document's agreement with the router.

mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use common::*;
use ispmux_gateway::ControlCommand;
use ispmux_slowpath::registry::{password, PasswordCost, Registry, Status};
use serde_json::json;

const NEW: &str = "02:00:00:00:0a:02";

fn reg(f: &Fixture) -> Registry {
    Registry::open(&f.db).expect("registry")
}

#[tokio::test]
async fn a_subscriber_lives_and_dies_through_the_api() {
    let f = Fixture::new("");
    let base = "/v1/isps/isp-a/subscribers";
    let (s, v) = f
        .json(
            "POST",
            base,
            &f.token_a,
            json!({ "mac": NEW, "customer_id": "C2", "password": "s3cret" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["isp"], "isp-a");
    let stored = reg(&f)
        .subscriber(NEW.parse().expect("mac"))
        .expect("read")
        .expect("added");
    let h = stored.password_hash.expect("hash");
    assert!(h.starts_with("$argon2id$v=19$m=64,t=1"), "{h}");
    assert!(password::verify(&h, b"s3cret"));

    let (s, v) = f
        .json("GET", &format!("{base}/{NEW}"), &f.token_a, json!(null))
        .await;
    assert_eq!(
        (s, &v["customer_id"], &v["password"]),
        (StatusCode::OK, &json!("C2"), &json!(true))
    );
    assert!(
        v.get("password_hash").is_none(),
        "the hash never leaves: {v}"
    );

    // Changes: customer id, then a hash sent as is, then the password removed.
    let (s, v) = f
        .json(
            "PATCH",
            &format!("{base}/{NEW}"),
            &f.token_a,
            json!({ "customer_id": "C3" }),
        )
        .await;
    assert_eq!(
        (s, &v["customer_id"]),
        (StatusCode::OK, &json!("C3")),
        "{v}"
    );
    let sent = password::hash(b"other", PasswordCost { m_kib: 128, t: 2 }).expect("hash");
    let (s, v) = f
        .json(
            "PATCH",
            &format!("{base}/{NEW}"),
            &f.token_a,
            json!({ "password_hash": sent }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let got = reg(&f)
        .subscriber(NEW.parse().expect("mac"))
        .expect("read")
        .expect("sub");
    assert_eq!(
        got.password_hash.as_deref(),
        Some(sent.as_str()),
        "stored as sent"
    );
    let weak = password::hash(b"weak", PasswordCost { m_kib: 32, t: 1 }).expect("hash");
    let (s, v) = f
        .json(
            "PATCH",
            &format!("{base}/{NEW}"),
            &f.token_a,
            json!({ "password_hash": weak }),
        )
        .await;
    assert_eq!(
        (s, &v["field"]),
        (StatusCode::BAD_REQUEST, &json!("password_hash")),
        "{v}"
    );
    let (s, v) = f
        .json(
            "PATCH",
            &format!("{base}/{NEW}"),
            &f.token_a,
            json!({ "password": null }),
        )
        .await;
    assert_eq!((s, &v["password"]), (StatusCode::OK, &json!(false)), "{v}");

    // Suspending the bound subscriber withdraws its binding through the gateway.
    let (s, v) = f
        .json(
            "POST",
            &format!("{base}/{SUB_A}/suspend"),
            &f.token_a,
            json!(null),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["binding_withdrawn"]["withdrawn"], true, "{v}");
    assert!(f
        .gateway
        .seen
        .lock()
        .expect("seen")
        .contains(&ControlCommand::Revoke(SUB_A.parse().expect("mac"))));
    let r = reg(&f);
    let a = r
        .subscriber(SUB_A.parse().expect("mac"))
        .expect("read")
        .expect("sub");
    assert_eq!(a.status, Status::Suspended);
    assert_eq!(r.binding(a.mac).expect("read"), None);
    let (s, _) = f
        .json(
            "POST",
            &format!("{base}/{SUB_A}/resume"),
            &f.token_a,
            json!(null),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        reg(&f)
            .subscriber(a.mac)
            .expect("read")
            .expect("sub")
            .status,
        Status::Active
    );

    // Listing: pages by cursor, filters.
    let (s, v) = f
        .json("GET", &format!("{base}?limit=1"), &f.token_a, json!(null))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["subscribers"][0]["mac"], SUB_A);
    assert_eq!(v["next"], SUB_A);
    let (_, v) = f
        .json(
            "GET",
            &format!("{base}?limit=1&after={SUB_A}"),
            &f.token_a,
            json!(null),
        )
        .await;
    assert_eq!(v["subscribers"][0]["mac"], NEW);
    let (_, v) = f
        .json(
            "GET",
            &format!("{base}?customer_id_prefix=C&status=active"),
            &f.token_a,
            json!(null),
        )
        .await;
    assert_eq!(v["subscribers"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["next"], json!(null));

    let (s, v) = f
        .json("DELETE", &format!("{base}/{NEW}"), &f.token_a, json!(null))
        .await;
    assert_eq!((s, &v["removed"]), (StatusCode::OK, &json!(NEW)), "{v}");
    let (s, _) = f
        .json("GET", &format!("{base}/{NEW}"), &f.token_a, json!(null))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The ISP's own bindings, refusals, counters.
    let (_, v) = f
        .json("GET", "/v1/isps/isp-b/bindings", &f.token_b, json!(null))
        .await;
    assert_eq!(v["bindings"][0]["mac"], SUB_B, "{v}");
    let (_, v) = f
        .json("GET", "/v1/isps/isp-b/refusals", &f.token_b, json!(null))
        .await;
    assert_eq!(v["refusals"].as_array().map(Vec::len), Some(1), "{v}");
    let (s, v) = f
        .json("GET", "/v1/isps/isp-b/counters", &f.token_b, json!(null))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["headend_up"]["packets"], 20, "isp-b's own line: {v}");
    let (_, v) = f.json("GET", "/v1/isps", &f.token_b, json!(null)).await;
    assert_eq!(
        v["isps"].as_array().map(Vec::len),
        Some(1),
        "only its own: {v}"
    );
    let (_, v) = f.json("GET", "/v1/isps", OPERATOR, json!(null)).await;
    assert_eq!(v["isps"].as_array().map(Vec::len), Some(2), "{v}");
}

#[tokio::test]
async fn bulk_import_is_all_or_nothing_in_json_and_csv() {
    let f = Fixture::new("");
    let uri = "/v1/isps/isp-a/subscribers/import";
    let rows = |n: usize, bad: Option<usize>| {
        (0..n)
            .map(|i| {
                let mac = if Some(i) == bad {
                    "zz".to_owned()
                } else {
                    format!("02:00:00:01:00:{i:02x}")
                };
                json!({ "mac": mac, "customer_id": format!("B{i}") })
            })
            .collect::<Vec<_>>()
    };
    let before = f.dump();
    let (s, v) = f
        .json("POST", uri, &f.token_a, json!(rows(10, Some(7))))
        .await;
    assert_eq!(
        (s, &v["field"]),
        (StatusCode::BAD_REQUEST, &json!("[7].mac")),
        "{v}"
    );
    // A duplicate of the store's, late in the batch: named, and nothing of it written.
    let mut dup = rows(10, None);
    dup[9]["mac"] = json!(SUB_B);
    let (s, v) = f.json("POST", uri, &f.token_a, json!(dup)).await;
    assert_eq!(
        (s, &v["field"]),
        (StatusCode::CONFLICT, &json!("[9].mac")),
        "{v}"
    );
    let (s, v) = f.json("POST", uri, &f.token_a, json!(rows(51, None))).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(f.dump(), before, "nothing half-written");

    let (s, v) = f.json("POST", uri, &f.token_a, json!(rows(10, None))).await;
    assert_eq!((s, &v["added"]), (StatusCode::CREATED, &json!(10)), "{v}");

    let csv = "mac,customer_id,password,status\n02:00:00:02:00:01,K1,pw1,\n02:00:00:02:00:02,K2,,suspended\n";
    let (s, v) = f
        .send("POST", uri, Some(&f.token_a), Some("text/csv"), csv.into())
        .await;
    assert_eq!((s, &v["added"]), (StatusCode::CREATED, &json!(2)), "{v}");
    let r = reg(&f);
    let k2 = r
        .subscriber("02:00:00:02:00:02".parse().expect("mac"))
        .expect("read")
        .expect("sub");
    assert_eq!((k2.status, k2.password_hash), (Status::Suspended, None));
    let before = f.dump();
    for (csv, field) in [
        (
            "mac,customer_id\n02:00:00:03:00:01,K\n02:00:00:03:00:01,K\n",
            "[1].mac",
        ),
        (
            "mac,customer_id,isp\n02:00:00:03:00:01,K,isp-b\n",
            "line 2.isp",
        ),
        (
            "mac,customer_id,colour\n02:00:00:03:00:01,K,red\n",
            "line 1",
        ),
        ("mac,customer_id\n02:00:00:03:00:01\n", "line 2"),
    ] {
        let (s, v) = f
            .send("POST", uri, Some(&f.token_a), Some("text/csv"), csv.into())
            .await;
        assert!(s.is_client_error(), "{csv}: {s} {v}");
        assert_eq!(v["field"], field, "{csv}: {v}");
    }
    assert_eq!(f.dump(), before);
}

#[tokio::test]
async fn a_bulk_import_stores_hashes_sent_and_refuses_weak_ones_by_row() {
    let f = Fixture::new("");
    let uri = "/v1/isps/isp-a/subscribers/import";
    // A PHC string has commas (m=..,t=..,p=..): quoted in CSV.
    // The fixture's cost is m=64 KiB, t=1: one at least that is stored as sent.
    let good = password::hash(b"pw", PasswordCost { m_kib: 64, t: 1 }).expect("hash");
    let weak = password::hash(b"pw", PasswordCost { m_kib: 32, t: 1 }).expect("hash");
    let argon2i = good.replacen("$argon2id$", "$argon2i$", 1);
    let before = f.dump();
    for (bad, why) in [(&weak, "below the configured"), (&argon2i, "not argon2id")] {
        let rows = json!([
            { "mac": "02:00:00:04:00:01", "customer_id": "H1", "password_hash": good },
            { "mac": "02:00:00:04:00:02", "customer_id": "H2", "password_hash": bad },
        ]);
        let (s, v) = f.json("POST", uri, &f.token_a, rows).await;
        assert_eq!(
            (s, &v["field"]),
            (StatusCode::BAD_REQUEST, &json!("[1].password_hash")),
            "{v}"
        );
        assert!(v["reason"].as_str().is_some_and(|r| r.contains(why)), "{v}");
        let csv = format!(
            "mac,customer_id,password_hash\n02:00:00:04:00:01,H1,\"{good}\"\n02:00:00:04:00:02,H2,\"{bad}\"\n"
        );
        let (s, v) = f
            .send("POST", uri, Some(&f.token_a), Some("text/csv"), csv.into())
            .await;
        assert_eq!(
            (s, &v["field"]),
            (StatusCode::BAD_REQUEST, &json!("[1].password_hash")),
            "{v}"
        );
    }
    assert_eq!(f.dump(), before, "nothing of a refused import written");
    let csv = format!(
        "mac,customer_id,password_hash\n02:00:00:04:00:01,H1,\"{good}\"\n02:00:00:04:00:02,H2,\n"
    );
    let (s, v) = f
        .send("POST", uri, Some(&f.token_a), Some("text/csv"), csv.into())
        .await;
    assert_eq!((s, &v["added"]), (StatusCode::CREATED, &json!(2)), "{v}");
    let r = reg(&f);
    let hash_of = |m: &str| {
        r.subscriber(m.parse().expect("mac"))
            .expect("read")
            .expect("sub")
            .password_hash
    };
    assert_eq!(
        hash_of("02:00:00:04:00:01"),
        Some(good.clone()),
        "stored as sent"
    );
    assert_eq!(hash_of("02:00:00:04:00:02"), None);
}

#[tokio::test]
async fn bad_input_names_the_field_and_the_reason() {
    let f = Fixture::new("");
    let base = "/v1/isps/isp-a/subscribers";
    let t = Some(f.token_a.as_str());
    let ct = Some("application/json");
    let cases: Vec<(&str, String, Vec<u8>, StatusCode, &str)> = vec![
        (
            "POST",
            base.into(),
            b"{\"mac\":".to_vec(),
            StatusCode::BAD_REQUEST,
            "body",
        ),
        (
            "POST",
            base.into(),
            br#"{"mac":"02:00:00:00:0a:09","customer_id":5}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "customer_id",
        ),
        (
            "POST",
            base.into(),
            br#"{"mac":"02:00:00:00:0a","customer_id":"x"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "mac",
        ),
        (
            "POST",
            base.into(),
            br#"{"mac":"02:00:00:00:0a:09","customer_id":" "}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "customer_id",
        ),
        (
            "POST",
            base.into(),
            br#"{"mac":"02:00:00:00:0a:09","customer_id":"x","status":"gone"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "status",
        ),
        (
            "POST",
            base.into(),
            br#"{"mac":"02:00:00:00:0a:09","customer_id":"x","password":"a","password_hash":"b"}"#
                .to_vec(),
            StatusCode::BAD_REQUEST,
            "password_hash",
        ),
        (
            "POST",
            base.into(),
            format!(r#"{{"mac":"{SUB_A}","customer_id":"x"}}"#).into_bytes(),
            StatusCode::CONFLICT,
            "mac",
        ),
        (
            "POST",
            "/v1/isps/isp-z/subscribers".into(),
            br#"{"mac":"02:00:00:00:0a:09","customer_id":"x"}"#.to_vec(),
            StatusCode::NOT_FOUND,
            "isp",
        ),
        (
            "POST",
            base.into(),
            vec![b' '; 70_000],
            StatusCode::PAYLOAD_TOO_LARGE,
            "body",
        ),
        (
            "GET",
            format!("{base}/not-a-mac"),
            vec![],
            StatusCode::BAD_REQUEST,
            "mac",
        ),
        (
            "GET",
            format!("{base}?limit=0"),
            vec![],
            StatusCode::BAD_REQUEST,
            "limit",
        ),
        (
            "GET",
            format!("{base}?limit=x"),
            vec![],
            StatusCode::BAD_REQUEST,
            "query",
        ),
        (
            "GET",
            format!("{base}?after=zz"),
            vec![],
            StatusCode::BAD_REQUEST,
            "after",
        ),
        (
            "GET",
            format!("{base}/02:00:00:00:0a:77"),
            vec![],
            StatusCode::NOT_FOUND,
            "mac",
        ),
    ];
    let before = f.dump();
    for (m, uri, body, status, field) in cases {
        let (s, v) = f.send(m, &uri, t, ct, body).await;
        assert_eq!(
            (s, v["field"].as_str()),
            (status, Some(field)),
            "{m} {uri}: {v}"
        );
        assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()), "{v}");
    }
    assert_eq!(f.dump(), before);
    let (s, v) = f.send("GET", "/v2/nothing", t, None, vec![]).await;
    assert_eq!(
        (s, &v["error"]),
        (StatusCode::NOT_FOUND, &json!("no such route"))
    );
    let (s, v) = f.send("PUT", base, t, None, vec![]).await;
    assert_eq!(
        (s, &v["error"]),
        (StatusCode::METHOD_NOT_ALLOWED, &json!("method not allowed"))
    );
}

#[tokio::test]
async fn tokens_are_the_operators_to_issue_and_failed_logins_wait() {
    let f = Fixture::new("login_failures = 3\nlogin_window_s = 60");
    let (s, v) = f
        .json(
            "POST",
            "/v1/isps/isp-a/tokens",
            OPERATOR,
            json!({ "label": "crm" }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let new = v["token"].as_str().expect("token").to_owned();
    let id = v["id"].as_i64().expect("id");
    let (s, v) = f
        .json("GET", "/v1/isps/isp-a/tokens", OPERATOR, json!(null))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        !v.to_string().contains(&new),
        "listed without the token: {v}"
    );
    assert_eq!(v["tokens"].as_array().map(Vec::len), Some(2), "{v}");
    let (s, _) = f
        .json("GET", "/v1/isps/isp-a/subscribers", &new, json!(null))
        .await;
    assert_eq!(s, StatusCode::OK, "the new token works");
    for (m, uri) in [
        ("GET", "/v1/isps/isp-a/tokens"),
        ("POST", "/v1/isps/isp-a/tokens"),
        ("GET", "/v1/refusals"),
        ("GET", "/v1/stats"),
        ("POST", "/v1/client-sps/csp1/suspend"),
    ] {
        let (s, v) = f.json(m, uri, &new, json!(null)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{m} {uri}: {v}");
    }
    let (s, v) = f
        .json("POST", "/v1/client-sps/csp1/suspend", OPERATOR, json!(null))
        .await;
    assert_eq!((s, &v["csp"]), (StatusCode::OK, &json!("csp1")), "{v}");
    let (s, v) = f
        .json("POST", "/v1/client-sps/nope/resume", OPERATOR, json!(null))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) = f.json("GET", "/v1/stats", OPERATOR, json!(null)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = f
        .json(
            "DELETE",
            &format!("/v1/isps/isp-a/tokens/{id}"),
            OPERATOR,
            json!(null),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = f
        .json(
            "DELETE",
            &format!("/v1/isps/isp-a/tokens/{id}"),
            OPERATOR,
            json!(null),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The revoked token and two guesses: three failures; then even the right one waits.
    for t in [new.as_str(), "guess", "ispmux_0000"] {
        let (s, _) = f.json("GET", "/v1/isps", t, json!(null)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, v) = f.json("GET", "/v1/isps", OPERATOR, json!(null)).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{v}");
    let mut req = axum::http::Request::builder()
        .uri("/v1/isps")
        .header("authorization", format!("Bearer {OPERATOR}"))
        .body(axum::body::Body::empty())
        .expect("request");
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
            [198, 18, 0, 9],
            4000,
        ))));
    let resp = tower::ServiceExt::oneshot(f.app.clone(), req)
        .await
        .expect("send");
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "another source is not limited"
    );
}

#[tokio::test]
async fn the_document_and_the_router_agree() {
    let f = Fixture::new("");
    let served: BTreeSet<(String, String)> = ispmux_api::routes::routes()
        .into_iter()
        .map(|(m, p, _)| (m.to_string(), p.to_owned()))
        .collect();
    let documented: BTreeSet<(String, String)> = documented().into_iter().collect();
    assert_eq!(
        served, documented,
        "every route served is documented, and only those"
    );
    // Each documented route answers as a route, not as "no such route" or a wrong method.
    for (m, p) in &documented {
        let uri = p
            .replace("{isp}", "isp-a")
            .replace("{mac}", SUB_A)
            .replace("{csp}", "csp1")
            .replace("{id}", "999");
        let (s, v) = f.json(m, &uri, OPERATOR, json!(null)).await;
        assert!(
            s != StatusCode::METHOD_NOT_ALLOWED && v["error"] != "no such route",
            "{m} {p}: {s} {v}"
        );
        assert!(!s.is_server_error(), "{m} {p}: {s} {v}");
    }
}
