//! Requests generated from the OpenAPI document: any method on any documented path with
//! random parameters, queries, headers and bodies (random bytes, random JSON, valid bodies
//! with fields replaced). The server never answers 5xx and never panics; every refusal is
//! the JSON error shape. Bounded to a few seconds.

mod common;

use common::*;
use proptest::prelude::*;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "[ -~]{0,24}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from(SUB_A)),
        Just(serde_json::Value::from("active")),
        Just(serde_json::Value::from(
            "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
        )),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("mac".to_owned()),
                    Just("customer_id".to_owned()),
                    Just("password".to_owned()),
                    Just("password_hash".to_owned()),
                    Just("status".to_owned()),
                    Just("label".to_owned()),
                    Just("isp".to_owned()),
                    "[a-z_]{0,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        prop::collection::vec(any::<u8>(), 0..200),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        json_value().prop_map(|v| {
            let mut ok = serde_json::json!({ "mac": "02:00:00:00:0d:01", "customer_id": "F" });
            if let serde_json::Value::Object(m) = v {
                for (k, x) in m {
                    ok[k] = x;
                }
            }
            serde_json::Value::from(vec![ok.clone(), ok]).to_string().into_bytes()
        }),
        "(mac|customer_id|password|status|isp|x)(,(mac|customer_id|password|status|isp|x)){0,4}\n([ -~]{0,30}\n){0,4}"
            .prop_map(String::into_bytes),
    ]
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_:.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn param() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("isp-a".to_owned()),
        Just("isp-b".to_owned()),
        Just(SUB_A.to_owned()),
        Just(SUB_B.to_owned()),
        Just("csp1".to_owned()),
        Just("1".to_owned()),
        "[ -~]{0,16}",
        "\\PC{0,8}",
    ]
}

#[test]
fn generated_requests_never_get_a_server_error() {
    let f = Fixture::new("login_failures = 1000000");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let paths: Vec<String> = documented().into_iter().map(|(_, p)| p).collect();
    let tokens = vec![
        Some(f.token_a.clone()),
        Some(f.token_b.clone()),
        Some(OPERATOR.to_owned()),
        Some("ispmux_nope".to_owned()),
        None,
    ];
    let cfg = ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(cfg, |(
        method in prop::sample::select(vec!["GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS"]),
        path in prop::sample::select(paths.clone()),
        params in prop::collection::vec(param(), 3),
        q in prop::option::of(("(limit|after|status|customer_id_prefix|x)", "[ -~]{0,12}")),
        token in prop::sample::select(tokens.clone()),
        ct in prop::sample::select(vec![Some("application/json"), Some("text/csv"), None, Some("text/csv; charset=utf-8")]),
        body in body(),
    )| {
        let mut uri = path
            .replace("{isp}", &encode(&params[0]))
            .replace("{mac}", &encode(&params[1]))
            .replace("{csp}", &encode(&params[1]))
            .replace("{id}", &encode(&params[2]))
            .replace("{label}", &encode(&params[2]));
        if let Some((k, v)) = q {
            uri.push_str(&format!("?{k}={}", encode(&v)));
        }
        let (s, v) = rt.block_on(f.send(method, &uri, token.as_deref(), ct, body));
        prop_assert!(!s.is_server_error(), "{} {}: {} {}", method, uri, s, v);
        if s.is_client_error() && method != "HEAD" {
            prop_assert!(v["error"].is_string() && v["reason"].is_string(), "{} {}: {} {}", method, uri, s, v);
        }
    });
}
