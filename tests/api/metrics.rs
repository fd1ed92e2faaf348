//! `GET /metrics`: the exposition parses, and the values move with the work done.

use std::collections::HashMap;

use super::helpers::*;

/// Samples keyed by `name{labels}` exactly as exposed (labels in exposition
/// order). Panics on any line that is not a comment or a well-formed sample.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let words: Vec<&str> = comment.split_whitespace().collect();
            assert!(
                matches!(words.first(), Some(&"HELP") | Some(&"TYPE")),
                "bad comment: {line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels: {line}");
        }
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|e| panic!("bad value in {line}: {e}")),
        };
        assert!(samples.insert(series.to_owned(), value).is_none(), "repeated: {line}");
    }
    samples
}

async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let res = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(res.status().as_u16(), 200);
    let kind = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    parse(&res.text().await.unwrap_or_else(|e| panic!("{e}")))
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_parse_and_move_with_requests_transitions_and_flushes() {
    let app = TestApp::spawn().await;
    let before = scrape(&app).await;
    assert_eq!(value(&before, "tenant_seats{state=\"free\"}"), 0.0);
    assert_eq!(value(&before, "tenant_mailbox_depth"), 0.0);

    let d = app.district("D").await;
    let seats = app.purchase(d, 5).await;
    assert_eq!(app.allocate(seats[0], "l1").await.status, 200);
    assert_eq!(app.allocate(seats[1], "l2").await.status, 200);
    assert_eq!(app.allocate(seats[1], "l3").await.status, 400);
    assert_eq!(app.reclaim(seats[0], None).await.status, 200);
    assert_eq!(app.get("/api/v1/nowhere/at/all").await.status, 404);
    assert_eq!(app.get(&format!("/api/v1/seats/{}", seats[2])).await.status, 200);

    let after = scrape(&app).await;
    let moved = |series: &str| value(&after, series) - value(&before, series);
    assert_eq!(moved("tenant_seat_transitions_total{kind=\"purchase\"}"), 5.0);
    assert_eq!(moved("tenant_seat_transitions_total{kind=\"allocate\"}"), 2.0);
    assert_eq!(moved("tenant_seat_transitions_total{kind=\"reclaim\"}"), 1.0);
    assert_eq!(value(&after, "tenant_seats{state=\"free\"}"), 4.0);
    assert_eq!(value(&after, "tenant_seats{state=\"assigned\"}"), 1.0);
    assert_eq!(value(&after, "tenant_seats{state=\"reserved\"}"), 0.0);
    let requests = |route: &str, method: &str, status: u16| {
        value(
            &after,
            &format!("tenant_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(requests("/api/v1/seats/allocate", "POST", 200), 2.0);
    assert_eq!(requests("/api/v1/seats/allocate", "POST", 400), 1.0);
    assert_eq!(requests("/api/v1/seats/{id}", "GET", 200), 1.0);
    assert_eq!(requests("other", "GET", 404), 1.0);
    assert_eq!(requests("/metrics", "GET", 200), 1.0, "the first scrape is counted");
    assert_eq!(
        value(
            &after,
            "tenant_http_request_duration_seconds_count{route=\"/api/v1/seats/allocate\"}"
        ),
        3.0
    );
    assert_eq!(
        value(
            &after,
            "tenant_http_request_duration_seconds_bucket{route=\"/api/v1/seats/allocate\",le=\"+Inf\"}"
        ),
        3.0
    );
    assert!(
        value(
            &after,
            "tenant_http_request_duration_seconds_sum{route=\"/api/v1/seats/allocate\"}"
        ) > 0.0
    );
    // district, purchase, two allocations and a reclaim each waited for a flush.
    assert!(moved("tenant_group_commit_flush_seconds_count") >= 1.0);
    assert!(moved("tenant_group_commit_batch_size_sum") >= 5.0, "{after:?}");
    assert!(value(&after, "tenant_group_commit_flush_seconds_sum") > 0.0);
    assert!(value(&after, "tenant_store_size_bytes") > 0.0);
    assert_eq!(value(&after, "tenant_mailbox_depth"), 0.0);

    // Seats by state are rebuilt on start.
    let app = app.restart().await;
    let again = scrape(&app).await;
    assert_eq!(value(&again, "tenant_seats{state=\"free\"}"), 4.0);
    assert_eq!(value(&again, "tenant_seats{state=\"assigned\"}"), 1.0);
}

#[tokio::test]
async fn hostile_paths_and_methods_do_not_mint_label_values() {
    let app = TestApp::spawn().await;
    for i in 0..20 {
        let _ = app
            .client
            .get(app.url(&format!("/junk/{i}/x{i}")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let method = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap_or_else(|e| panic!("{e}"));
        let _ = app
            .client
            .request(method, app.url("/health"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let samples = scrape(&app).await;
    let series: Vec<&String> = samples
        .keys()
        .filter(|k| k.starts_with("tenant_http_requests_total"))
        .collect();
    assert!(series.len() <= 3, "{series:?}");
    assert_eq!(
        value(
            &samples,
            "tenant_http_requests_total{method=\"GET\",route=\"other\",status=\"404\"}"
        ),
        20.0
    );
    assert_eq!(
        value(
            &samples,
            "tenant_http_requests_total{method=\"other\",route=\"/health\",status=\"405\"}"
        ),
        20.0
    );
}
