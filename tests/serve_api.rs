//! `audience serve` end to end over HTTP: every route, the error statuses (401, 403, 404, 409,
//! 413, 422, 428, 503, 504), counts equal to the command line's, saved segments that never lose
//! an edit, export jobs, and the OpenAPI document equal to the real routes.

mod common;

use audience::serve::ROUTES;
use common::http::{request, Reply};
use common::serve::{cli_count, Server, TOKEN};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

const SEGMENT: &str =
    "primaryDevice and pushRegistrationEnabled and count(AppLaunch within 30d) >= 3";

#[test]
fn counts_equal_the_command_line_with_channels_and_conditions() {
    let s = Server::start(|_| {});
    let r = s.call("POST", "/api/v1/count", Some(json!({ "segment": SEGMENT })));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        v["counts"]["installations"],
        cli_count(&s.store, SEGMENT, "installations")
    );
    assert_eq!(
        v["counts"]["persons"],
        cli_count(&s.store, SEGMENT, "persons")
    );
    let push = format!("({SEGMENT}) and pushRegistrationEnabled and state != \"uninstalled\"");
    assert_eq!(
        v["reachable"]["push"],
        cli_count(&s.store, &push, "installations")
    );
    let email = format!("({SEGMENT}) and emails is set");
    assert_eq!(
        v["reachable"]["email"],
        cli_count(&s.store, &email, "persons")
    );
    let conditions = v["conditions"].as_array().unwrap();
    assert_eq!(conditions.len(), 3);
    assert_eq!(conditions[0]["text"], "primaryDevice");
    assert_eq!(conditions[0]["span"], json!({"start": 0, "end": 13}));
    assert_eq!(
        conditions[2]["installations"],
        cli_count(
            &s.store,
            "count(AppLaunch within 30d) >= 3",
            "installations"
        )
    );
    // Asked again, every condition is kept: the same report, from the cache alone; and the
    // same report from a server that keeps nothing.
    let again = s
        .call("POST", "/api/v1/count", Some(json!({ "segment": SEGMENT })))
        .json();
    let fresh = Server::start(|o| o.matched_budget = 0)
        .call("POST", "/api/v1/count", Some(json!({ "segment": SEGMENT })))
        .json();
    for key in ["counts", "reachable", "conditions"] {
        assert_eq!(again[key], v[key], "{key}, kept");
        assert_eq!(fresh[key], v[key], "{key}, nothing kept");
    }
    // Another as-of moves the windows.
    let earlier = s.call(
        "POST",
        "/api/v1/count",
        Some(json!({ "segment": SEGMENT, "as_of": "2026-10-01T12:00Z" })),
    );
    assert_eq!(earlier.json()["as_of"], "2026-10-01T12:00:00Z");
}

#[test]
fn a_segment_with_errors_answers_422_with_diagnostics() {
    let s = Server::start(|_| {});
    let r = s.call(
        "POST",
        "/api/v1/count",
        Some(json!({ "segment": "primaryDevise" })),
    );
    assert_eq!(r.status, 422);
    let d = &r.json()["error"]["diagnostics"][0];
    assert_eq!(d["code"], "E020");
    assert_eq!(d["span"], json!({"start": 0, "end": 13}));
    assert_eq!(d["hint"], "did you mean `primaryDevice`?");
    let c = s
        .call(
            "POST",
            "/api/v1/check",
            Some(json!({ "segment": "primaryDevise" })),
        )
        .json();
    assert_eq!(c["ok"], false);
    assert_eq!(c["diagnostics"][0]["code"], "E020");
    let ok = s
        .call(
            "POST",
            "/api/v1/check",
            Some(json!({ "segment": "PRIMARYDEVICE  and platform=\"iOS\"" })),
        )
        .json();
    assert_eq!(ok["ok"], true);
    assert_eq!(ok["canonical"], "PRIMARYDEVICE and platform = \"iOS\"");
    assert_eq!(
        ok["resolved"],
        "installation.primaryDevice and installation.platform = \"iOS\""
    );
}

#[test]
fn preview_pages_rows_with_chosen_columns() {
    let s = Server::start(|_| {});
    let page = |offset: usize| {
        s.call(
            "POST",
            "/api/v1/preview",
            Some(json!({"segment": "identified", "target": "persons",
                        "columns": ["externalUserId", "emails"], "limit": 5, "offset": offset})),
        )
    };
    let first = page(0).json();
    assert_eq!(first["columns"], json!(["externalUserId", "emails"]));
    assert_eq!(first["rows"].as_array().unwrap().len(), 5);
    assert_eq!(first["has_more"], true);
    assert!(first["rows"][0][1].is_array(), "lists stay lists");
    assert_ne!(page(5).json()["rows"][0], first["rows"][0]);
    let too_many = s.call(
        "POST",
        "/api/v1/preview",
        Some(json!({"segment": "identified", "target": "persons", "limit": 1001})),
    );
    assert_eq!(too_many.status, 400);
    let wrong_column = s.call(
        "POST",
        "/api/v1/preview",
        Some(json!({"segment": "identified", "target": "persons", "columns": ["platform"]})),
    );
    assert_eq!(wrong_column.status, 400);
    assert_eq!(wrong_column.json()["error"]["code"], "invalid");
}

#[test]
fn catalog_snapshots_explain_and_trend() {
    let s = Server::start(|_| {});
    let snaps = s.call("GET", "/api/v1/snapshots", None).json();
    let id = snaps["latest"].as_str().unwrap().to_string();
    assert_eq!(snaps["snapshots"][0]["id"], id);
    let cat = s
        .call("GET", &format!("/api/v1/catalog?snapshot={id}"), None)
        .json();
    let platform = cat["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "platform")
        .unwrap();
    assert!(platform["values"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["value"] == "iOS"));
    let purchase = cat["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "Purchase")
        .unwrap();
    assert!(purchase["properties"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "amount"));
    let unknown = s.call("GET", "/api/v1/catalog?snapshot=nope", None);
    assert!(unknown.status >= 400);
    let e = s
        .call(
            "POST",
            "/api/v1/explain",
            Some(json!({"segment": SEGMENT, "target": "persons"})),
        )
        .json();
    assert!(e["logical"].as_str().unwrap().contains("LeftSemi"), "{e}");
    assert!(e["physical"].as_str().unwrap().contains("DataSourceExec"));
    let t = s
        .call(
            "POST",
            "/api/v1/trend",
            Some(
                json!({"segment": "did(AppLaunch within 7d)", "target": "installations",
                        "from": "2026-10-20", "to": "2026-10-30"}),
            ),
        )
        .json();
    let points = t["points"].as_array().unwrap();
    assert_eq!(points.len(), 11);
    assert_eq!(
        points[10]["count"],
        cli_count_at(&s.store, "did(AppLaunch within 7d)", "2026-10-30")
    );
}

fn cli_count_at(store: &Path, segment: &str, as_of: &str) -> u64 {
    let out = assert_cmd::Command::cargo_bin("audience")
        .unwrap()
        .arg("--store")
        .arg(store)
        .args(["count", "--as-of", as_of, segment])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn saved_segments_never_lose_an_edit() {
    let s = Server::start(|_| {});
    let put = |name: &str, text: &str, header: Option<String>| {
        s.call_with(
            "PUT",
            &format!("/api/v1/segments/{name}"),
            Some(json!({ "text": text })),
            &header.into_iter().collect::<Vec<_>>(),
        )
    };
    assert_eq!(put("vip", "tags has \"vip\"", None).status, 428);
    let created = put("vip", "tags has \"vip\"", Some("If-None-Match: *".into()));
    assert_eq!(created.status, 201, "{}", created.text());
    let etag = created.header("etag").unwrap().to_string();
    assert_eq!(
        put("vip", "identified", Some("If-None-Match: *".into())).status,
        409
    );
    // Two editors read the same version; the first save wins, the second gets 409 and the
    // current text, and nothing it sent is stored.
    let first = put(
        "vip",
        "tags has \"vip\" and identified",
        Some(format!("If-Match: {etag}")),
    );
    assert_eq!(first.status, 200);
    let second = put(
        "vip",
        "platform = \"iOS\"",
        Some(format!("If-Match: {etag}")),
    );
    assert_eq!(second.status, 409);
    assert_eq!(
        second.json()["error"]["current"]["text"],
        "tags has \"vip\" and identified"
    );
    let got = s.call("GET", "/api/v1/segments/vip", None);
    assert_eq!(got.json()["text"], "tags has \"vip\" and identified");
    assert_eq!(
        std::fs::read_to_string(s.store.join("segments/vip.seg")).unwrap(),
        "tags has \"vip\" and identified",
        "stored as the .seg file the command line reads"
    );
    let bad = put("bad", "primaryDevise", Some("If-None-Match: *".into()));
    assert_eq!(bad.status, 422);
    for name in ["..%2Fescape", ".hidden", "a%20b"] {
        assert_eq!(
            put(name, "identified", Some("If-None-Match: *".into())).status,
            400,
            "{name}"
        );
    }
    assert_eq!(s.call("GET", "/api/v1/segments/nope", None).status, 404);
    let list = s.call("GET", "/api/v1/segments", None).json();
    assert_eq!(list["segments"][0]["name"], "vip");
    let current = got.header("etag").unwrap().to_string();
    let stale = s.call_with(
        "DELETE",
        "/api/v1/segments/vip",
        None,
        &[format!("If-Match: {etag}")],
    );
    assert_eq!(stale.status, 409);
    let gone = s.call_with(
        "DELETE",
        "/api/v1/segments/vip",
        None,
        &[format!("If-Match: {current}")],
    );
    assert_eq!(gone.status, 204);
    // The command line resolves saved segments from the store's folder by name.
    put("buyers", "did(Purchase)", Some("If-None-Match: *".into()));
    assert_eq!(
        cli_count(&s.store, "segment(\"buyers\")", "persons"),
        cli_count(&s.store, "did(Purchase)", "persons")
    );
}

fn wait_for(s: &Server, id: &str) -> Value {
    for _ in 0..600 {
        let job = s.call("GET", &format!("/api/v1/exports/{id}"), None).json();
        if job["status"] != "running" {
            return job;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("export {id} did not finish");
}

#[test]
fn exports_run_as_jobs_and_download() {
    let s = Server::start(|_| {});
    let started = s.call(
        "POST",
        "/api/v1/exports",
        Some(json!({"segment": SEGMENT, "channel": "push", "format": "csv"})),
    );
    assert_eq!(started.status, 202, "{}", started.text());
    let id = started.json()["id"].as_str().unwrap().to_string();
    let job = wait_for(&s, &id);
    assert_eq!(job["status"], "done", "{job}");
    let name = job["files"][0]["name"].as_str().unwrap().to_string();
    // A plain link carries the token as a query parameter.
    let file = request(
        s.addr,
        "GET",
        &format!("/api/v1/exports/{id}/files/{name}?token={TOKEN}"),
        &[],
        b"",
    );
    assert_eq!(file.status, 200);
    assert!(file.header("content-disposition").unwrap().contains(&name));
    let lines = file.text().lines().count() as u64;
    let push = format!("({SEGMENT}) and pushRegistrationEnabled and state != \"uninstalled\"");
    assert_eq!(lines - 1, cli_count(&s.store, &push, "installations"));
    assert_eq!(job["rows"], lines - 1);
    // Saved segments, several files in one job.
    for (n, t) in [("a", "did(Purchase)"), ("b", "identified")] {
        s.call_with(
            "PUT",
            &format!("/api/v1/segments/{n}"),
            Some(json!({ "text": t })),
            &["If-None-Match: *".into()],
        );
    }
    let many = s.call(
        "POST",
        "/api/v1/exports",
        Some(json!({"segments": ["a", "b"], "format": "jsonl", "target": "persons"})),
    );
    let job = wait_for(&s, many.json()["id"].as_str().unwrap());
    assert_eq!(job["files"].as_array().unwrap().len(), 2, "{job}");
    let listed = s.call("GET", "/api/v1/exports", None).json();
    assert_eq!(listed["exports"].as_array().unwrap().len(), 2);
    assert_eq!(
        s.call("DELETE", &format!("/api/v1/exports/{id}"), None)
            .status,
        204
    );
    assert_eq!(
        s.call("GET", &format!("/api/v1/exports/{id}"), None).status,
        404
    );
    let contradicting = s.call(
        "POST",
        "/api/v1/exports",
        Some(json!({"segment": "identified", "channel": "email", "target": "installations", "format": "csv"})),
    );
    assert_eq!(contradicting.status, 400);
}

#[test]
fn wrong_or_missing_tokens_get_401_and_nothing_about_the_store() {
    let s = Server::start(|_| {});
    for headers in [
        vec![],
        vec!["Authorization: Bearer wrong-token-000000000".to_string()],
    ] {
        let r = request(s.addr, "GET", "/api/v1/snapshots", &headers, b"");
        assert_eq!(r.status, 401);
        let body = r.text();
        assert!(
            !body.contains(s.store.to_str().unwrap()) && !body.contains("snapshot"),
            "{body}"
        );
    }
    // A token in the query string is for file downloads only.
    let r = request(
        s.addr,
        "GET",
        &format!("/api/v1/snapshots?token={TOKEN}"),
        &[],
        b"",
    );
    assert_eq!(r.status, 401);
    assert_eq!(request(s.addr, "GET", "/api/health", &[], b"").status, 200);
    let page = request(s.addr, "GET", "/", &[], b"");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<html"));
}

#[test]
fn read_only_servers_refuse_writes_with_403() {
    let s = Server::start(|o| o.read_only = true);
    let r = s.call_with(
        "PUT",
        "/api/v1/segments/x",
        Some(json!({"text": "identified"})),
        &["If-None-Match: *".into()],
    );
    assert_eq!(r.status, 403);
    let e = s.call(
        "POST",
        "/api/v1/exports",
        Some(json!({"segment": "identified", "format": "csv"})),
    );
    assert_eq!(e.status, 403);
    assert_eq!(
        s.call(
            "POST",
            "/api/v1/count",
            Some(json!({"segment": "identified"}))
        )
        .status,
        200
    );
}

#[test]
fn bodies_and_segments_are_bounded_with_413() {
    let s = Server::start(|_| {});
    let long = "identified or ".repeat(5_000) + "identified";
    let r = s.call("POST", "/api/v1/count", Some(json!({ "segment": long })));
    assert_eq!(r.status, 413);
    let huge = "x".repeat(300 * 1024);
    let r = request(
        s.addr,
        "POST",
        "/api/v1/count",
        &[format!("Authorization: Bearer {TOKEN}")],
        format!("{{\"segment\": \"{huge}\"}}").as_bytes(),
    );
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["error"]["code"], "too_large");
    let bad = request(
        s.addr,
        "POST",
        "/api/v1/count",
        &[format!("Authorization: Bearer {TOKEN}")],
        b"{not json",
    );
    assert_eq!(bad.status, 400);
}

#[test]
fn an_overloaded_server_answers_503_with_retry_after() {
    let s = Server::start(|o| {
        o.max_queries = 1;
        o.queue_wait = Duration::from_millis(1);
    });
    let addr = s.addr;
    let replies: Vec<Reply> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(move || {
                    request(
                        addr,
                        "POST",
                        "/api/v1/count",
                        &[format!("Authorization: Bearer {TOKEN}")],
                        json!({"segment": SEGMENT}).to_string().as_bytes(),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let busy: Vec<&Reply> = replies.iter().filter(|r| r.status == 503).collect();
    assert!(replies.iter().any(|r| r.status == 200));
    assert!(
        !busy.is_empty(),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert_eq!(busy[0].header("retry-after"), Some("1"));
    assert_eq!(busy[0].json()["error"]["code"], "busy");
}

#[test]
fn a_query_past_its_time_limit_is_cancelled_with_504() {
    let s = Server::start(|o| o.query_timeout = Duration::from_millis(1));
    let r = s.call("POST", "/api/v1/count", Some(json!({ "segment": SEGMENT })));
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["error"]["code"], "timeout");
    // The server goes on.
    assert_eq!(request(s.addr, "GET", "/api/health", &[], b"").status, 200);
}

#[test]
fn a_new_snapshot_is_picked_up_without_a_restart() {
    let s = Server::start(|_| {});
    let before = s.call("GET", "/api/v1/snapshots", None).json();
    let out = assert_cmd::Command::cargo_bin("audience")
        .unwrap()
        .args([
            "generate",
            "--persons",
            "50",
            "--days",
            "10",
            "--partition",
            "month",
            "--out",
        ])
        .arg(&s.store)
        .output()
        .unwrap();
    assert!(out.status.success());
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let after = s.call("GET", "/api/v1/snapshots", None).json();
    assert_ne!(before["latest"], after["latest"]);
    assert_eq!(after["latest"], id);
    let count = s
        .call(
            "POST",
            "/api/v1/count",
            Some(json!({"segment": "identified"})),
        )
        .json();
    assert_eq!(count["snapshot_id"], id);
    // The earlier snapshot stays queryable by id.
    let old = s
        .call(
            "POST",
            "/api/v1/count",
            Some(json!({"segment": "identified", "snapshot": before["latest"]})),
        )
        .json();
    assert_eq!(old["snapshot_id"], before["latest"]);
}

/// The document lists exactly the router's routes, and every route answers (no 404 or 405
/// from the router itself).
#[test]
fn the_openapi_document_is_the_routes() {
    let s = Server::start(|_| {});
    let doc = s.call("GET", "/api/openapi.json", None).json();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_some() {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    documented.sort();
    let mut routed: Vec<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    routed.sort();
    assert_eq!(documented, routed);
    for (method, path) in &routed {
        let concrete = path.replace("{name}", "x").replace("{id}", "x");
        let r = s.call(method, &concrete, Some(json!({})));
        let routed_away =
            r.status == 405 || (r.status == 404 && r.json()["error"]["message"] == "no such route");
        assert!(!routed_away, "{method} {path}: {}", r.status);
    }
}
