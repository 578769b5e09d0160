//! The operator's routes that edit the configuration file: an ISP created, read, changed
//! and removed; a client SP's capacity; and their refusals, each leaving the file as it was.

mod common;

use axum::http::StatusCode;
use common::*;
use ispmux_gateway::ControlCommand;
use ispmux_slowpath::registry::Registry;
use serde_json::json;

fn file(f: &Fixture) -> String {
    std::fs::read_to_string(&f.config).expect("config")
}

fn reloads(f: &Fixture) -> usize {
    f.gateway
        .seen
        .lock()
        .expect("seen")
        .iter()
        .filter(|c| matches!(c, ControlCommand::Reload))
        .count()
}

fn isp_c() -> serde_json::Value {
    json!({
        "id": 3,
        "name": "isp-c",
        "gateway": "198.18.3.1",
        "upstream": { "label": 1003, "port": "core", "next_hop": "02:00:00:00:00:c1" },
        "labels": [{ "label": 4003, "action": { "kind": "pop_deliver" } }],
        "dhcp": { "servers": ["198.18.9.3"] },
    })
}

#[tokio::test]
async fn an_isp_is_created_read_changed_and_removed_in_the_file() {
    let f = Fixture::new("");
    let (s, v) = f.json("POST", "/v1/isps", OPERATOR, isp_c()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["isp"], isp_c());
    assert!(v["reload"]["path"].is_string(), "{v}");
    assert_eq!(reloads(&f), 1);
    let text = file(&f);
    // The operator's comments and entries stay; the new ISP follows the others.
    assert!(text.starts_with("# The fixture's gateway.\n"), "{text}");
    assert!(text.contains("name = \"isp-a\"   # the first\n"), "{text}");
    let c = text.find("name = \"isp-c\"").expect("isp-c written");
    assert!(c < text.find("[[tables.ilm]]").expect("ilm"), "{text}");
    assert!(
        text.contains("action = { kind = \"pop_deliver\", isp = 3 }"),
        "{text}"
    );
    assert!(ispmux_conf::check(&f.config).is_ok());
    let bak = f.dir.path().join("ispmux.toml.bak");
    assert_eq!(std::fs::read_to_string(bak).expect("bak"), CONFIG);

    let (s, v) = f.json("GET", "/v1/isps/isp-c", OPERATOR, json!(null)).await;
    assert_eq!((s, &v), (StatusCode::OK, &isp_c()));

    // Its label moves; nothing else in the file does.
    let before = file(&f);
    let (s, v) = f
        .json(
            "PATCH",
            "/v1/isps/isp-c",
            OPERATOR,
            json!({ "upstream": { "label": 1013 }, "gateway": null }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["isp"]["upstream"]["label"], 1013);
    assert!(v["isp"].get("gateway").is_none(), "{v}");
    let after = file(&f);
    assert_eq!(
        after,
        before
            .replace("label = 1003", "label = 1013")
            .replace("gateway = \"198.18.3.1\"\n", "")
    );
    // The same patch again changes nothing and reloads nothing.
    let n = reloads(&f);
    let (s, v) = f
        .json(
            "PATCH",
            "/v1/isps/isp-c",
            OPERATOR,
            json!({ "upstream": { "label": 1013 } }),
        )
        .await;
    assert_eq!((s, &v["reload"]), (StatusCode::OK, &json!(null)), "{v}");
    assert_eq!(reloads(&f), n);

    let (s, v) = f
        .json("DELETE", "/v1/isps/isp-c", OPERATOR, json!(null))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(file(&f), CONFIG, "the file is back to what it was");
    let (s, _) = f.json("GET", "/v1/isps/isp-c", OPERATOR, json!(null)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_isp_with_subscribers_goes_only_by_force() {
    let f = Fixture::new("");
    let (s, v) = f
        .json("DELETE", "/v1/isps/isp-b", OPERATOR, json!(null))
        .await;
    assert_eq!(
        (s, &v["error"]),
        (StatusCode::CONFLICT, &json!("in use")),
        "{v}"
    );
    assert_eq!(file(&f), CONFIG);
    let (s, v) = f
        .json("DELETE", "/v1/isps/isp-b?force=true", OPERATOR, json!(null))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["subscribers_removed"], 1);
    let text = file(&f);
    assert!(!text.contains("isp-b") && !text.contains("4002"), "{text}");
    let r = Registry::open(&f.db).expect("registry");
    assert!(!r.has_isp("isp-b").expect("has"));
    assert!(r
        .subscriber(SUB_B.parse().expect("mac"))
        .expect("read")
        .is_none());
    // Its tokens went with it.
    let (s, _) = f
        .json("GET", "/v1/isps/isp-b/subscribers", &f.token_b, json!(null))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = f
        .json("DELETE", "/v1/isps/isp-b", OPERATOR, json!(null))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Every refusal names the field and leaves the file, byte for byte, and the running
/// configuration alone.
#[tokio::test]
async fn bad_edits_are_refused_with_their_field() {
    let f = Fixture::new("");
    let cases: Vec<(&str, &str, Vec<u8>, StatusCode, &str)> = vec![
        ("POST", "/v1/isps", b"{\"id\": 3,".to_vec(), StatusCode::BAD_REQUEST, "body"),
        ("POST", "/v1/isps", b"[1]".to_vec(), StatusCode::BAD_REQUEST, "body"),
        ("POST", "/v1/isps", br#"{"id": 3}"#.to_vec(), StatusCode::BAD_REQUEST, "name"),
        ("POST", "/v1/isps", br#"{"name": "isp-c"}"#.to_vec(), StatusCode::BAD_REQUEST, "id"),
        (
            "POST",
            "/v1/isps",
            br#"{"id": 3, "name": "isp-c", "colour": "red"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "colour",
        ),
        (
            "POST",
            "/v1/isps",
            br#"{"id": 3, "name": "isp-a"}"#.to_vec(),
            StatusCode::CONFLICT,
            "name",
        ),
        (
            "POST",
            "/v1/isps",
            br#"{"id": 1, "name": "isp-c"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "id",
        ),
        (
            "POST",
            "/v1/isps",
            br#"{"id": 3, "name": "isp-c", "upstream": {"label": 1001, "port": "core", "next_hop": "02:00:00:00:00:c1"}}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "upstream.label",
        ),
        (
            "POST",
            "/v1/isps",
            br#"{"id": 3, "name": "isp-c", "labels": [{"label": 4002, "action": {"kind": "pop_deliver"}}]}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "labels[0].label",
        ),
        (
            "POST",
            "/v1/isps",
            br#"{"id": 3, "name": "isp-c", "upstream": {"label": 1003, "port": "nope", "next_hop": "02:00:00:00:00:c1"}}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "upstream.port",
        ),
        (
            "PATCH",
            "/v1/isps/isp-a",
            br#"{"name": "isp-z"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "name",
        ),
        (
            "PATCH",
            "/v1/isps/isp-a",
            br#"{"dhcp": {"servers": ["not an address"]}}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "dhcp.servers",
        ),
        (
            "PATCH",
            "/v1/isps/isp-a",
            br#"{"handoff": [null]}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "handoff[0]",
        ),
        ("PATCH", "/v1/isps/isp-z", b"{}".to_vec(), StatusCode::NOT_FOUND, "isp"),
        (
            "PATCH",
            "/v1/client-sps/csp1",
            br#"{"capacity": {"ports": -1}}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "capacity.ports",
        ),
        (
            "PATCH",
            "/v1/client-sps/csp1",
            br#"{"capacity": {}, "secret": "x"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
            "secret",
        ),
        (
            "PATCH",
            "/v1/client-sps/nope",
            br#"{"capacity": {"ports": 1}}"#.to_vec(),
            StatusCode::NOT_FOUND,
            "csp",
        ),
    ];
    for (m, uri, body, status, field) in cases {
        let shown = String::from_utf8_lossy(&body).into_owned();
        let (s, v) = f
            .send(m, uri, Some(OPERATOR), Some("application/json"), body)
            .await;
        assert_eq!(s, status, "{m} {uri} {shown}: {v}");
        let got = v["field"].as_str().unwrap_or_default();
        assert!(
            got.starts_with(field),
            "{m} {uri} {shown}: field {got:?}: {v}"
        );
        assert!(v["reason"].as_str().is_some_and(|r| !r.is_empty()), "{v}");
        if s == StatusCode::UNPROCESSABLE_ENTITY {
            let p = &v["problems"][0];
            assert!(p["key"].is_string() && p["line"].is_u64(), "{v}");
        }
        assert_eq!(file(&f), CONFIG, "{m} {uri} {shown} left the file alone");
    }
    assert_eq!(reloads(&f), 0, "nothing refused was reloaded");
    assert!(
        !f.dir.path().join(".ispmux.toml.api-new").exists(),
        "no temporary file is left"
    );
}

#[tokio::test]
async fn a_refused_reload_puts_the_file_back() {
    let f = Fixture::new("");
    f.gateway
        .refuse_reload
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let (s, v) = f.json("POST", "/v1/isps", OPERATOR, isp_c()).await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert!(
        v["reason"]
            .as_str()
            .is_some_and(|r| r.contains("reload refused")),
        "{v}"
    );
    assert_eq!(reloads(&f), 1);
    assert_eq!(file(&f), CONFIG);
}

#[tokio::test]
async fn a_client_sp_s_capacity_changes_in_the_file() {
    let f = Fixture::new("");
    let (s, v) = f.json("GET", "/v1/client-sps", OPERATOR, json!(null)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["client_sps"][0]["capacity"],
        json!({ "ports": 100, "period": "month" })
    );
    assert!(!v.to_string().contains("secret"), "no secret shown: {v}");
    let (s, v) = f
        .json(
            "PATCH",
            "/v1/client-sps/csp1",
            OPERATOR,
            json!({ "capacity": { "ports": 20, "connection_time_s": 3600 } }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["client_sp"]["capacity"]["ports"], 20);
    assert!(
        file(&f).contains(
            "capacity = { ports = 20, period = \"month\", connection_time_s = 3600 }  # rented"
        ),
        "{}",
        file(&f)
    );
}

/// What an ISP can read, the operator reads for every ISP.
#[tokio::test]
async fn the_operator_reads_what_each_isp_reads() {
    let f = Fixture::new("");
    for isp in ["isp-a", "isp-b"] {
        for what in ["subscribers", "bindings", "refusals", "counters"] {
            let uri = format!("/v1/isps/{isp}/{what}");
            let (s, v) = f.json("GET", &uri, OPERATOR, json!(null)).await;
            assert_eq!(s, StatusCode::OK, "{uri}: {v}");
            assert!(
                v.to_string().contains(isp) || what == "bindings",
                "{uri}: {v}"
            );
        }
    }
    let (s, v) = f.json("GET", "/v1/isps", OPERATOR, json!(null)).await;
    assert_eq!(
        (s, v["isps"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(2))
    );
}

#[tokio::test]
async fn transit_labels_are_written_and_removed_and_an_isp_s_stay_its() {
    let f = Fixture::new("");
    let (s, v) = f.json("GET", "/v1/labels", OPERATOR, json!(null)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["labels"],
        json!([{ "label": 4002, "action": { "kind": "pop_deliver", "isp": 2 } }])
    );
    let swap = json!({ "kind": "swap", "out_label": 5001, "port": "core", "next_hop": "02:00:00:00:00:c1" });
    let (s, v) = f
        .json(
            "PUT",
            "/v1/labels/5000",
            OPERATOR,
            json!({ "action": swap }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["label"], json!({ "label": 5000, "action": swap }));
    assert!(
        file(&f).contains("label = 5000\naction = { kind = \"swap\""),
        "{}",
        file(&f)
    );
    // A swap out of a port that is not a core port: the check's error at the action.
    let (s, v) = f
        .json(
            "PUT",
            "/v1/labels/5000",
            OPERATOR,
            json!({ "action": { "kind": "swap", "out_label": 5001, "port": "acc", "next_hop": "02:00:00:00:00:c1" } }),
        )
        .await;
    assert_eq!(
        (s, &v["field"]),
        (StatusCode::UNPROCESSABLE_ENTITY, &json!("action.port")),
        "{v}"
    );
    // An ISP's label is the ISP's.
    let (s, v) = f
        .json(
            "PUT",
            "/v1/labels/4002",
            OPERATOR,
            json!({ "action": swap }),
        )
        .await;
    assert_eq!(
        (s, &v["field"]),
        (StatusCode::CONFLICT, &json!("label")),
        "{v}"
    );
    let (s, v) = f
        .json("DELETE", "/v1/labels/4002", OPERATOR, json!(null))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    let (s, v) = f
        .json("PUT", "/v1/labels/x", OPERATOR, json!({ "action": swap }))
        .await;
    assert_eq!(
        (s, &v["field"]),
        (StatusCode::BAD_REQUEST, &json!("label")),
        "{v}"
    );
    let (s, v) = f
        .json("DELETE", "/v1/labels/5000", OPERATOR, json!(null))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(file(&f), CONFIG);
    let (s, _) = f
        .json("DELETE", "/v1/labels/5000", OPERATOR, json!(null))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// Edits at once are taken one at a time: none is lost to another's read of the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_at_once_all_land() {
    let f = Fixture::new("");
    let create = |i: u16| {
        let f = &f;
        async move {
            f.json(
                "POST",
                "/v1/isps",
                OPERATOR,
                json!({ "id": 10 + i, "name": format!("isp-c{i}") }),
            )
            .await
        }
    };
    let all = tokio::join!(
        create(0),
        create(1),
        create(2),
        create(3),
        create(4),
        create(5)
    );
    for (s, v) in [all.0, all.1, all.2, all.3, all.4, all.5] {
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let text = file(&f);
    for i in 0..6 {
        assert!(
            text.contains(&format!("name = \"isp-c{i}\"")),
            "isp-c{i}: {text}"
        );
    }
    assert!(ispmux_conf::check(&f.config).is_ok());
}
