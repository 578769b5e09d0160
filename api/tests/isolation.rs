//! Isolation: every route of the OpenAPI document, with ISP A's token, against ISP B's
//! objects. Nothing of B's is shown or changed, and the answers are the ones a missing
//! object gets, so A cannot even tell what B has.

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;

const MISSING: &str = "02:00:00:00:ff:ff";

fn body_for(method: &str, path: &str) -> serde_json::Value {
    match (method, path) {
        ("POST", "/v1/isps/{isp}/subscribers") => {
            json!({ "mac": "02:00:00:00:0c:01", "customer_id": "stolen" })
        }
        ("POST", "/v1/isps/{isp}/subscribers/import") => {
            json!([{ "mac": "02:00:00:00:0c:02", "customer_id": "stolen" }])
        }
        ("PUT", "/v1/labels/{label}") => json!({
            "action": { "kind": "swap", "out_label": 5001, "port": "core", "next_hop": "02:00:00:00:00:c1" }
        }),
        ("PATCH", "/v1/isps/{isp}") => json!({ "gateway": "198.18.66.1" }),
        ("PATCH", "/v1/client-sps/{csp}") => json!({ "capacity": { "ports": 1 } }),
        ("PATCH", _) => json!({ "customer_id": "stolen", "status": "suspended", "password": "x" }),
        ("POST", "/v1/isps/{isp}/tokens") => json!({ "label": "stolen" }),
        ("POST", "/v1/isps") => {
            json!({ "id": 9, "name": "stolen", "dhcp": { "servers": ["198.18.9.9"] } })
        }
        _ => json!(null),
    }
}

#[tokio::test]
async fn isp_a_never_reads_or_changes_isp_b() {
    let f = Fixture::new("login_failures = 1000000");
    let before = f.dump();
    let file_before = std::fs::read(&f.config).expect("config");
    let routes = documented();
    assert!(routes.len() >= 19, "{routes:?}");
    for (m, p) in &routes {
        let fill = |isp: &str, mac: &str| {
            p.replace("{isp}", isp)
                .replace("{mac}", mac)
                .replace("{csp}", "csp1")
                .replace("{label}", "5000")
                .replace("{id}", &f.token_b_id.to_string())
        };
        let body = body_for(m, p);
        // B's ISP in the path; and where the route names an object of B's, that object
        // under A's own ISP (elsewhere A's own path is A's to change).
        let (s_b, v_b) = f
            .json(m, &fill("isp-b", SUB_B), &f.token_a, body.clone())
            .await;
        // The operator's routes under an ISP: its tokens, its configuration.
        let operators = p.contains("/tokens") || p == "/v1/isps/{isp}";
        let (s_own, v_own) = if p.contains("{mac}") || p.contains("{id}") || operators {
            f.json(m, &fill("isp-a", SUB_B), &f.token_a, body.clone())
                .await
        } else {
            (StatusCode::FORBIDDEN, json!(null))
        };
        let text = format!("{v_b} {v_own}");
        assert!(
            !text.contains("isp-b-C1")
                && !text.contains("198.18.9.10")
                && !text.contains(&f.token_b),
            "{m} {p} leaks: {text}"
        );
        if !p.contains("{isp}") {
            // Routes of no ISP: the operator's, or the list of ISPs A may see.
            if p == "/v1/isps" && m == "GET" {
                assert_eq!(s_b, StatusCode::OK);
                assert!(!v_b.to_string().contains("isp-b"), "{v_b}");
            } else {
                assert_eq!(s_b, StatusCode::FORBIDDEN, "{m} {p}: {v_b}");
            }
            continue;
        }
        if operators {
            assert_eq!(
                (s_b, s_own),
                (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN),
                "{m} {p}"
            );
            continue;
        }
        assert_eq!(s_b, StatusCode::NOT_FOUND, "{m} {p}: {v_b}");
        if p.contains("{mac}") {
            // Exactly what a subscriber nobody has gets, on A's own ISP.
            let (s_missing, v_missing) = f
                .json(m, &fill("isp-a", MISSING), &f.token_a, body.clone())
                .await;
            assert_eq!(s_missing, StatusCode::NOT_FOUND, "{m} {p}: {v_missing}");
            let missing_as_b: serde_json::Value =
                serde_json::from_str(&v_missing.to_string().replace(MISSING, SUB_B)).expect("json");
            assert_eq!(v_b, missing_as_b, "{m} {p}");
            assert_eq!(
                (s_own, &v_own),
                (StatusCode::NOT_FOUND, &missing_as_b),
                "{m} {p}"
            );
        } else {
            // Exactly what an ISP that does not exist gets.
            let (_, v_none) = f
                .json(m, &fill("isp-none", SUB_B), &f.token_a, body.clone())
                .await;
            let none_as_b: serde_json::Value =
                serde_json::from_str(&v_none.to_string().replace("isp-none", "isp-b"))
                    .expect("json");
            assert_eq!(v_b, none_as_b, "{m} {p}");
        }
    }
    assert_eq!(f.dump(), before, "the store is unchanged");
    assert_eq!(
        std::fs::read(&f.config).expect("config"),
        file_before,
        "the configuration file is unchanged, byte for byte"
    );
    let seen = f.gateway.seen.lock().expect("seen").clone();
    // Only reads may have reached the gateway (none does: every route refused first).
    assert!(
        seen.iter()
            .all(|c| matches!(c, ispmux_gateway::ControlCommand::Stats)),
        "nothing reached the gateway on B's behalf: {seen:?}"
    );
    // B's token still works and sees its own.
    let (s, v) = f
        .json(
            "GET",
            &format!("/v1/isps/isp-b/subscribers/{SUB_B}"),
            &f.token_b,
            json!(null),
        )
        .await;
    assert_eq!((s, &v["customer_id"]), (StatusCode::OK, &json!("isp-b-C1")));
    // The operator's token does what A's could not, with the same bodies.
    for (m, p) in [
        ("POST", "/v1/isps"),
        ("PATCH", "/v1/isps/{isp}"),
        ("PATCH", "/v1/client-sps/{csp}"),
        ("PUT", "/v1/labels/{label}"),
    ] {
        let uri = p
            .replace("{isp}", "isp-b")
            .replace("{csp}", "csp1")
            .replace("{label}", "5000");
        let (s, v) = f.json(m, &uri, OPERATOR, body_for(m, p)).await;
        assert!(s.is_success(), "{m} {p}: {s} {v}");
    }
    assert_ne!(std::fs::read(&f.config).expect("config"), file_before);
}
