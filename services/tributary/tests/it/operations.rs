//! Operations (issue 17): Prometheus metrics on every role, parsed with the Prometheus client's
//! own exposition-format parser; OpenTelemetry spans received by a real OTLP (gRPC) receiver,
//! one trace from the POST through the relay, the pipeline and the reactor's GL posting; JSON
//! log lines carrying the request id and the trace id.

use crate::helpers::{Backend, TestApp, ensure_python_package};
use crate::sigkill::spawn_up_logging;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tributary_kernel::telemetry::names;

/// The families of a `/metrics` answer as parsed by `prometheus_client.parser` (Python):
/// `[{name, type, samples: [[name, labels, value]]}]`, keyed by family name.
fn parse_exposition(text: &str) -> BTreeMap<String, Value> {
    ensure_python_package("prometheus_client", "prometheus-client==0.26.0");
    let script = "import sys, json\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        print(json.dumps([{'name': f.name, 'type': f.type, 'samples': [[s.name, s.labels, s.value] for s in f.samples]} \
        for f in text_string_to_metric_families(sys.stdin.read())]))";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the exposition format does not parse: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let families: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    families
        .into_iter()
        .map(|family| (family["name"].as_str().unwrap().to_owned(), family))
        .collect()
}

/// The value of the sample `sample` of `family` whose labels include `labels`.
fn sample(
    families: &BTreeMap<String, Value>,
    family: &str,
    sample: &str,
    labels: &[(&str, &str)],
) -> Option<f64> {
    families.get(family)?["samples"]
        .as_array()?
        .iter()
        .find(|s| {
            s[0] == sample
                && labels.iter().all(|(key, value)| {
                    let found = s[1][*key].as_str();
                    // Bucket bounds compare as numbers ("100" and "100.0" are one bound).
                    match (*key, found) {
                        ("le", Some(found)) => {
                            found.parse::<f64>().ok() == value.parse::<f64>().ok()
                        }
                        _ => found == Some(*value),
                    }
                })
        })
        .and_then(|s| s[2].as_f64())
}

async fn scrape(base: &str) -> BTreeMap<String, Value> {
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{:?}",
        response.headers()
    );
    parse_exposition(&response.text().await.unwrap())
}

/// Posts company OBS's entries (only this test posts in OBS: its counts are exact).
async fn observed_company(app: &TestApp) {
    app.ok(
        "/api/v1/companies",
        json!({"code": "OBS", "name": "Observed company"}),
    )
    .await;
    for (number, kind) in [("1000", "asset"), ("4000", "revenue")] {
        app.ok(
            "/api/v1/accounts",
            json!({"company": "OBS", "number": number, "name": number, "type": kind, "currency": "EUR"}),
        )
        .await;
    }
    app.ok(
        "/api/v1/fiscal-years",
        json!({"company": "OBS", "year": 2026}),
    )
    .await;
    for amount in ["5.00", "50.00", "5000.00"] {
        app.ok(
            "/api/v1/journal-entries",
            json!({"company": "OBS", "posting_date": "2026-03-03", "lines": [
                {"account": "1000", "debit": amount, "currency": "EUR"},
                {"account": "4000", "credit": amount, "currency": "EUR"}]}),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_serves_metrics_that_the_prometheus_parser_reads_and_that_count_what_happened() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    observed_company(&app).await;
    app.settle().await;
    let rows = app
        .sql("SELECT count(*) FROM gl_journal_lines WHERE company = 'OBS'")
        .await;
    assert_eq!(rows[0][0], json!(6));
    // A refused command is counted under its status too.
    let (status, _) = app
        .post(
            "/api/v1/journal-entries",
            json!({"company": "OBS", "posting_date": "2026-03-03", "lines": []}),
        )
        .await;
    assert_eq!(status, 422);

    let families = scrape(&app.base).await;
    // Business metrics: three entries posted in OBS, 5,055.00 of debits.
    assert_eq!(
        families[names::JOURNAL_ENTRIES.trim_end_matches("_total")]["type"],
        "counter"
    );
    assert_eq!(
        sample(
            &families,
            "tributary_journal_entries_posted",
            names::JOURNAL_ENTRIES,
            &[("company", "OBS")]
        ),
        Some(3.0)
    );
    assert_eq!(families[names::JOURNAL_AMOUNT]["type"], "histogram");
    let amount = |suffix: &str, labels: &[(&str, &str)]| {
        let mut all = vec![("company", "OBS"), ("currency", "EUR")];
        all.extend_from_slice(labels);
        sample(
            &families,
            names::JOURNAL_AMOUNT,
            &format!("{}{suffix}", names::JOURNAL_AMOUNT),
            &all,
        )
    };
    assert_eq!(amount("_sum", &[]), Some(5055.0));
    assert_eq!(amount("_count", &[]), Some(3.0));
    // 5 and 50 fall at or below 100, 5000 does not.
    assert_eq!(amount("_bucket", &[("le", "100.0")]), Some(2.0));
    assert_eq!(amount("_bucket", &[("le", "10000.0")]), Some(3.0));

    // HTTP by route as declared (not per id) and status, as a histogram with buckets.
    let posted = [
        ("method", "POST"),
        ("route", "/api/v1/journal-entries"),
        ("status", "201"),
    ];
    assert!(
        sample(
            &families,
            "tributary_http_requests",
            names::HTTP_REQUESTS,
            &posted
        )
        .is_some_and(|n| n >= 3.0)
    );
    assert!(
        sample(
            &families,
            "tributary_http_requests",
            names::HTTP_REQUESTS,
            &[("route", "/api/v1/journal-entries"), ("status", "422")]
        )
        .is_some_and(|n| n >= 1.0)
    );
    assert_eq!(families[names::HTTP_DURATION]["type"], "histogram");
    assert!(
        sample(
            &families,
            names::HTTP_DURATION,
            &format!("{}_bucket", names::HTTP_DURATION),
            &[
                ("route", "/api/v1/journal-entries"),
                ("status", "201"),
                ("le", "+Inf")
            ]
        )
        .is_some_and(|n| n >= 3.0)
    );
    // The event store, the pipelines, the lake's freshness and the SQL endpoint.
    assert!(
        sample(
            &families,
            names::DB_DURATION,
            &format!("{}_count", names::DB_DURATION),
            &[("operation", "append"), ("backend", "sqlite")]
        )
        .is_some_and(|n| n >= 3.0)
    );
    assert!(
        sample(
            &families,
            "tributary_events_appended",
            names::EVENTS_APPENDED,
            &[("context", "finance")]
        )
        .is_some_and(|n| n >= 7.0)
    );
    assert!(
        sample(
            &families,
            "tributary_pipeline_events",
            names::PIPELINE_EVENTS,
            &[("pipeline", "finance")]
        )
        .is_some_and(|n| n >= 7.0)
    );
    assert_eq!(families[names::LAKE_FRESHNESS]["type"], "gauge");
    assert!(
        sample(
            &families,
            names::LAKE_FRESHNESS,
            names::LAKE_FRESHNESS,
            &[("table", "gl_journal_lines")]
        )
        .is_some()
    );
    assert!(
        sample(
            &families,
            names::QUERY_DURATION,
            &format!("{}_count", names::QUERY_DURATION),
            &[("endpoint", "http"), ("outcome", "ok")]
        )
        .is_some_and(|n| n >= 1.0)
    );
    assert!(
        sample(
            &families,
            "tributary_query_rows",
            names::QUERY_ROWS,
            &[("endpoint", "http")]
        )
        .is_some_and(|n| n >= 1.0)
    );

    // A role without an API (pipelines only) answers /healthz and /metrics too.
    let dir = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::config(dir.path(), None);
    config.roles = tributary::Roles::parse("pipelines").unwrap();
    let running = tributary::start(config).await.unwrap();
    let base = format!("http://{}", running.addr);
    assert_eq!(
        reqwest::get(format!("{base}/healthz"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        reqwest::get(format!("{base}/api/v1/accounts"))
            .await
            .unwrap()
            .status(),
        404,
        "a pipelines process serves no API"
    );
    assert!(scrape(&base).await.contains_key(names::LAKE_FRESHNESS));
    running.stop().await;

    // Every metric the alert rules use is one the processes serve.
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/prometheus/alerts.yml"
    ))
    .unwrap();
    let mut used = 0;
    for (start, _) in rules.match_indices("tributary_") {
        let name: String = rules[start..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(&name);
        assert!(
            names::ALL.contains(&base),
            "alerts.yml uses {name}, which no process serves"
        );
        used += 1;
    }
    assert!(used >= 8, "alerts.yml names {used} metrics");
}

/// Spans received over OTLP (gRPC) by a collector's trace service.
#[derive(Default, Clone)]
struct Received(Arc<Mutex<Vec<ReceivedSpan>>>);

#[derive(Debug, Clone)]
struct ReceivedSpan {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    attributes: BTreeMap<String, String>,
    /// The traces the span links to.
    links: Vec<String>,
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let mut received = self.0.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let attributes = span
                        .attributes
                        .iter()
                        .map(|kv| {
                            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                                Some(AnyValue::StringValue(s)) => s.clone(),
                                Some(AnyValue::IntValue(i)) => i.to_string(),
                                other => format!("{other:?}"),
                            };
                            (kv.key.clone(), value)
                        })
                        .collect();
                    received.push(ReceivedSpan {
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        name: span.name,
                        attributes,
                        links: span.links.iter().map(|link| hex(&link.trace_id)).collect(),
                    });
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// Starts an OTLP trace receiver on loopback; answers its endpoint URL.
async fn otlp_receiver(received: Received) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(received))
            .serve_with_incoming(tokio_stream_of(listener))
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |listener| async move {
        let accepted = listener.accept().await.map(|(stream, _)| stream);
        Some((accepted, listener))
    })
}

/// One trace from the POST of a goods receipt, through the relay, the pipelines and finance's
/// reactor to the GL posting's own publication; its log lines in JSON carry the request id and
/// the trace id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_goods_receipt_is_one_trace_from_its_post_to_the_gl_posting_and_its_logs_name_it() {
    let received = Received::default();
    let endpoint = otlp_receiver(received.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("o{}-", uuid::Uuid::new_v4().simple());
    let brokers = crate::kafka::brokers();
    let (mut child, base) = spawn_up_logging(
        dir.path(),
        &[
            "--kafka-brokers",
            &brokers,
            "--topic-prefix",
            &prefix,
            "--log-format",
            "json",
        ],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("RUST_LOG", "warn,tributary_kernel::http=debug"),
        ],
        Stdio::piped(),
    )
    .await;
    let stderr = child.stderr.take().unwrap();
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let keep = log.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            keep.lock().unwrap().push(line);
        }
    });
    let app = TestApp {
        running: None,
        client: crate::helpers::admin_client(&base).await,
        base,
        dir,
        database: None,
        backend: Backend::Sqlite,
    };
    crate::procure_to_pay::one_open_purchase_order(&app).await;

    // The receipt, in the caller's own trace.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let (status, _, answer) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/goods-receipts",
            Some(&json!({"purchase_order": "4500000077", "line": 10, "quantity": "2", "posting_date": "2026-03-02"}).to_string()),
            &[
                ("traceparent", &format!("00-{trace_id}-00f067aa0ba902b7-01")),
                ("x-request-id", "ops-receipt-1"),
            ],
        )
        .await;
    assert_eq!(status, 201, "{answer}");

    // Spans arrive in batches (the SDK's 5 s schedule): wait until the trace is complete.
    let wanted = |spans: &[ReceivedSpan]| {
        let ours: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
        let published = |event_type: &str| {
            ours.iter().any(|s| {
                s.name == "relay publish"
                    && s.attributes.get("event_type").map(String::as_str) == Some(event_type)
            })
        };
        ours.iter().any(|s| s.name == "request")
            && ours.iter().any(|s| s.name == "command")
            && ours.iter().any(|s| s.name == "store append")
            && published("GoodsMovementPosted")
            // A batch that also holds older events is in the first one's trace, linked to ours.
            && spans.iter().any(|s| {
                s.name == "pipeline batch"
                    && (s.trace_id == trace_id || s.links.iter().any(|l| l == trace_id))
            })
            && ours.iter().any(|s| s.name == "reaction")
            && published("JournalEntryPosted")
    };
    let mut complete = false;
    for _ in 0..600 {
        if wanted(&received.0.lock().unwrap()) {
            complete = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let spans = received.0.lock().unwrap().clone();
    let ours: Vec<&ReceivedSpan> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
    assert!(
        complete,
        "the trace is incomplete after 60 s: {:#?}",
        ours.iter()
            .map(|s| (&s.name, &s.attributes))
            .collect::<Vec<_>>()
    );
    // The request continues the caller's span; the GL posting's publication descends from it.
    let request = ours.iter().find(|s| s.name == "request").unwrap();
    let command = ours.iter().find(|s| s.name == "command").unwrap();
    assert_eq!(command.parent_span_id, request.span_id);
    assert!(
        command
            .attributes
            .get("event_types")
            .is_some_and(|types| types.split(',').any(|t| t == "GoodsMovementPosted")),
        "{command:?}"
    );
    assert!(
        ours.iter()
            .any(|s| s.name == "store append" && s.parent_span_id == command.span_id),
        "the command's append is its child"
    );
    assert_eq!(request.parent_span_id, "00f067aa0ba902b7");
    assert_eq!(
        request.attributes.get("request_id").map(String::as_str),
        Some("ops-receipt-1")
    );
    let by_id: BTreeMap<&str, &ReceivedSpan> =
        ours.iter().map(|s| (s.span_id.as_str(), *s)).collect();
    let gl = ours
        .iter()
        .find(|s| {
            s.name == "relay publish"
                && s.attributes.get("event_type").map(String::as_str) == Some("JournalEntryPosted")
        })
        .unwrap();
    let mut ancestors = Vec::new();
    let mut at = gl.parent_span_id.as_str();
    while let Some(parent) = by_id.get(at) {
        ancestors.push(parent.name.as_str());
        at = parent.parent_span_id.as_str();
    }
    assert!(
        ancestors.contains(&"reaction") && ancestors.contains(&"request"),
        "the GL posting's publication descends from {ancestors:?}"
    );

    // The JSON log line of the request names it and its trace.
    let mut line = None;
    for _ in 0..100 {
        line = log.lock().unwrap().iter().find_map(|line| {
            let value: Value = serde_json::from_str(line).ok()?;
            (value["request_id"] == "ops-receipt-1" && value["message"] == "request answered")
                .then_some(value)
        });
        if line.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let line =
        line.unwrap_or_else(|| panic!("no JSON line of the request in {:?}", log.lock().unwrap()));
    assert_eq!(line["trace_id"], trace_id, "{line}");
    assert_eq!(line["level"], "DEBUG", "{line}");
    assert_eq!(line["target"], "tributary_kernel::http", "{line}");
    assert_eq!(line["status"], 201, "{line}");
    assert!(
        chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str().unwrap()).is_ok(),
        "{line}"
    );
    // Every line on stderr is one JSON object.
    for line in log.lock().unwrap().iter() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok_and(|v| v.is_object()),
            "not JSON: {line}"
        );
    }

    // A query is a span of its own, with its rows, in the trace of the request that sent it.
    let query_trace = "0af7651916cd43dd8448eb211c80319c";
    let (status, _, answer) = app
        .request(
            reqwest::Method::POST,
            "/api/v1/sql",
            Some(&json!({"sql": "SELECT 1 AS one UNION ALL SELECT 2"}).to_string()),
            &[(
                "traceparent",
                &format!("00-{query_trace}-b7ad6b7169203331-01"),
            )],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let mut query = None;
    for _ in 0..600 {
        query = received
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|s| s.trace_id == query_trace && s.name == "query")
            .cloned();
        if query.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let query = query.expect("no query span after 60 s");
    assert_eq!(
        query.attributes.get("endpoint").map(String::as_str),
        Some("http")
    );
    assert_eq!(query.attributes.get("rows").map(String::as_str), Some("2"));
    assert_eq!(
        query.attributes.get("outcome").map(String::as_str),
        Some("ok")
    );
    child.kill().await.unwrap();
}
