//! What operators see of a process: the names of its Prometheus metrics and the W3C trace
//! context that follows a command from its request through the event store, Kafka, the
//! pipelines and the reactors.
//!
//! Metrics are recorded through the `metrics` facade (no-ops until the binary installs its
//! Prometheus recorder). Spans are `tracing` spans; with OpenTelemetry export on (the binary's
//! `OTEL_EXPORTER_OTLP_ENDPOINT`) each carries an OpenTelemetry context, whose `traceparent`
//! is stored in the metadata of the events a command appends and sent as a Kafka header, so
//! whoever handles an event later continues the same trace. With export off there is no
//! context and no `traceparent` anywhere.

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;
use std::time::Instant;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C header (and Kafka header, and metadata field) of a trace context.
pub const TRACEPARENT: &str = "traceparent";

/// Metric names (Prometheus), each with its labels.
pub mod names {
    /// Counter {method, route, status}: HTTP requests answered.
    pub const HTTP_REQUESTS: &str = "tributary_http_requests_total";
    /// Histogram {method, route, status}: seconds to answer an HTTP request.
    pub const HTTP_DURATION: &str = "tributary_http_request_duration_seconds";
    /// Histogram {operation}: seconds of an event store operation (append, read_feed, load, ...).
    pub const DB_DURATION: &str = "tributary_db_query_duration_seconds";
    /// Counter {context}: events appended to the event store.
    pub const EVENTS_APPENDED: &str = "tributary_events_appended_total";
    /// Counter {relay}: events the relay published to Kafka.
    pub const RELAY_PUBLISHED: &str = "tributary_relay_published_total";
    /// Gauge {relay}: events stored but not yet published.
    pub const RELAY_LAG: &str = "tributary_relay_lag_events";
    /// Counter {group, topic}: Kafka messages consumed.
    pub const KAFKA_CONSUMED: &str = "tributary_kafka_consumed_total";
    /// Gauge {group, topic, partition}: messages between a consumer's position and the end.
    pub const KAFKA_LAG: &str = "tributary_kafka_consumer_lag";
    /// Gauge {pipeline}: events a pipeline has not read yet.
    pub const PIPELINE_LAG: &str = "tributary_pipeline_lag_events";
    /// Gauge {table}: seconds the table is behind the newest event it will contain (0: current).
    pub const LAKE_FRESHNESS: &str = "tributary_lake_freshness_seconds";
    /// Counter {pipeline}: events pipelines processed.
    pub const PIPELINE_EVENTS: &str = "tributary_pipeline_events_total";
    /// Gauge {reactor}: events a reactor has not handled yet.
    pub const REACTOR_LAG: &str = "tributary_reactor_lag_events";
    /// Gauge {reactor}: its rejected commands waiting in suspense.
    pub const REACTOR_SUSPENSE: &str = "tributary_reactor_suspense_items";
    /// Histogram {endpoint = http | wire | report}: seconds of a SQL query over the lake.
    pub const QUERY_DURATION: &str = "tributary_query_duration_seconds";
    /// Counter {endpoint}: rows answered by SQL queries.
    pub const QUERY_ROWS: &str = "tributary_query_rows_total";
    /// Counter {report, status = succeeded | failed}: report runs finished.
    pub const REPORT_RUNS: &str = "tributary_report_runs_total";
    /// Counter {company}: journal entries posted (by users and by reactors).
    pub const JOURNAL_ENTRIES: &str = "tributary_journal_entries_posted_total";
    /// Histogram {company, currency}: the debits of each journal entry posted (its `_sum` is
    /// the amount posted).
    pub const JOURNAL_AMOUNT: &str = "tributary_journal_entry_amount";
    /// Counter {company, movement_type}: goods movements posted.
    pub const GOODS_MOVEMENTS: &str = "tributary_goods_movements_total";

    /// Histogram {backend}: commands appended in one transaction by the group commit.
    pub const STORE_GROUP_COMMANDS: &str = "tributary_store_group_commands";
    /// Counter {answered_by}: feed reads answered by the process's window of the feed's head
    /// (`window`) or by a query (`database`).
    pub const STORE_FEED_READS: &str = "tributary_store_feed_reads_total";
    /// Counter {backend}: groups that could not be appended whole (a command failed, or the
    /// commands depend on each other) and were appended again command by command.
    pub const STORE_GROUP_SPLIT: &str = "tributary_store_group_split_total";

    /// Every metric above.
    pub const ALL: [&str; 22] = [
        HTTP_REQUESTS,
        HTTP_DURATION,
        DB_DURATION,
        EVENTS_APPENDED,
        RELAY_PUBLISHED,
        RELAY_LAG,
        KAFKA_CONSUMED,
        KAFKA_LAG,
        PIPELINE_LAG,
        LAKE_FRESHNESS,
        PIPELINE_EVENTS,
        REACTOR_LAG,
        REACTOR_SUSPENSE,
        QUERY_DURATION,
        QUERY_ROWS,
        REPORT_RUNS,
        JOURNAL_ENTRIES,
        JOURNAL_AMOUNT,
        GOODS_MOVEMENTS,
        STORE_GROUP_COMMANDS,
        STORE_FEED_READS,
        STORE_GROUP_SPLIT,
    ];
}

/// Histogram bucket bounds in seconds, from a millisecond to a minute.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Histogram bucket bounds of the commands in one group commit.
pub const GROUP_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// Histogram bucket bounds of amounts (journal entries), from 10 to 10 million.
pub const AMOUNT_BUCKETS: &[f64] = &[
    10.0,
    100.0,
    1_000.0,
    10_000.0,
    100_000.0,
    1_000_000.0,
    10_000_000.0,
];

/// The business metrics of each context's events, by context (see [`observe_appended`]).
static OBSERVERS: RwLock<BTreeMap<&'static str, Observer>> = RwLock::new(BTreeMap::new());

/// A context's business metrics of one of its events.
pub type Observer = fn(&crate::EventEnvelope);

/// Has `observer` see every event of `context` this process appends from now on (a module's
/// business metrics; registering a context again replaces its observer).
pub fn observe_appended(context: &'static str, observer: Observer) {
    if let Ok(mut observers) = OBSERVERS.write() {
        observers.insert(context, observer);
    }
}

/// Counts appended events and hands each to its context's observer.
pub(crate) fn appended(events: &[crate::EventEnvelope]) {
    let Ok(observers) = OBSERVERS.read() else {
        return;
    };
    for event in events {
        metrics::counter!(names::EVENTS_APPENDED, "context" => event.context.clone()).increment(1);
        if let Some(observe) = observers.get(event.context.as_str()) {
            observe(event);
        }
    }
}

/// Records the seconds since `started` into the histogram `name` with `labels`.
pub fn observe_seconds(name: &'static str, labels: &[(&'static str, String)], started: Instant) {
    let labels: Vec<metrics::Label> = labels
        .iter()
        .map(|(key, value)| metrics::Label::new(*key, value.clone()))
        .collect();
    metrics::histogram!(name, labels).record(started.elapsed().as_secs_f64());
}

/// The `traceparent` of the current span, when it has a trace context (export is on).
pub fn current_traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

/// The `traceparent` of `span`, when it has a trace context (export is on).
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut Carrier(&mut carrier))
    });
    carrier.remove(TRACEPARENT)
}

/// The trace id of `span` (32 hex digits), when it has a trace context.
pub fn trace_id_of(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

/// Makes `span` continue the trace of `traceparent` (a request header, an event's metadata, a
/// Kafka header) and records its trace id in the span's `trace_id` field, when it has one (the
/// JSON logs show it). Call it before the span is first entered; a missing or malformed value
/// leaves the span a root.
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(context) = context_of(traceparent) {
        // Fails only when export is off (no layer) or the span already started: nothing to do.
        let _ = span.set_parent(context);
    }
    if let Some(trace_id) = trace_id_of(span) {
        span.record("trace_id", trace_id);
    }
}

/// Links `span` to the trace of `traceparent` without making it the parent (a pipeline batch
/// reads the events of many requests).
pub fn link_trace(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(context) = context_of(traceparent) {
        span.add_link(context.span().span_context().clone());
    }
}

fn context_of(traceparent: Option<&str>) -> Option<opentelemetry::Context> {
    let value = traceparent?;
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), value.to_owned())]);
    let context = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&ReadCarrier(&carrier))
    });
    context.span().span_context().is_valid().then_some(context)
}

/// The `traceparent` request header, when it is a valid trace context.
pub fn traceparent_header(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get(TRACEPARENT)?.to_str().ok()?;
    context_of(Some(value)).map(|_| value)
}

struct Carrier<'a>(&'a mut HashMap<String, String>);

impl Injector for Carrier<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct ReadCarrier<'a>(&'a HashMap<String, String>);

impl Extractor for ReadCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}
