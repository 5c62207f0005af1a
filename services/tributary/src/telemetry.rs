//! The process's telemetry: logs (plain text, or one JSON object per line), OpenTelemetry traces
//! over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and the Prometheus metrics served at
//! `GET /metrics` by every role. The metric names are `tributary_kernel::telemetry::names`.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};
use tributary_kernel::telemetry::{AMOUNT_BUCKETS, GROUP_BUCKETS, SECONDS_BUCKETS, names};

/// The log filter when `RUST_LOG` is unset. Ballista's client logs three lines per query sent
/// to the cluster (`--ballista`); the query metrics count them instead.
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,deltalake=warn,deltalake_core=warn,\
     buoyant_kernel=off,delta_kernel=off,ballista_core::execution_plans::distributed_query=warn";

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line: timestamp, level, target, message, the event's fields, and
    /// the request id and trace id of the request or event it belongs to (for Loki, Vector).
    Json,
}

/// What [`init`] set up; [`Telemetry::shutdown`] sends the spans still buffered.
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported (OTEL_EXPORTER_OTLP_ENDPOINT was set).
    pub fn exporting(&self) -> bool {
        self.tracer.is_some()
    }

    /// Exports the spans still buffered and stops the exporter (blocks up to a few seconds).
    pub fn shutdown(self) {
        if let Some(tracer) = self.tracer
            && let Err(error) = tracer.shutdown_with_timeout(Duration::from_secs(5))
        {
            eprintln!("warning: exporting the last spans failed: {error}");
        }
    }
}

/// Installs the log subscriber (with the OpenTelemetry layer when an OTLP endpoint is set, and
/// the W3C trace-context propagator) and the Prometheus recorder. Call inside the runtime: the
/// exporter's gRPC channel lives on it.
pub fn init(format: LogFormat) -> anyhow::Result<Telemetry> {
    let filter =
        || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let tracer = match std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Some(endpoint) if !endpoint.is_empty() => {
            // The exporter reads the endpoint (and OTEL_EXPORTER_OTLP_HEADERS, ...) itself.
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()?;
            let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "tributary".into());
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(
                        opentelemetry_sdk::Resource::builder()
                            .with_service_name(service)
                            .build(),
                    )
                    .build(),
            )
        }
        _ => None,
    };
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    // Spans reach the exporter whatever the log level: their own filter is INFO.
    let otel = tracer.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("tributary"))
            .with_filter(EnvFilter::new(
                "info,sqlx=warn,h2=warn,tonic=warn,hyper=warn",
            ))
    });
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines)
            .with_filter(filter())
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(logs)
        .with(otel)
        .try_init()?;
    if let Some(provider) = &tracer {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    metrics_handle();
    Ok(Telemetry { tracer })
}

/// The process's Prometheus recorder, installed on first use.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(SECONDS_BUCKETS)
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full(names::JOURNAL_AMOUNT.to_owned()),
                    AMOUNT_BUCKETS,
                )
            })
            .and_then(|builder| {
                builder.set_buckets_for_metric(
                    Matcher::Full(names::STORE_GROUP_COMMANDS.to_owned()),
                    GROUP_BUCKETS,
                )
            })
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        // Fails only when another recorder was installed first: its metrics are not ours to
        // render, ours then stay empty.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was installed before Tributary's");
        }
        // The recorder's housekeeping (histogram buffers), on a thread of its own.
        let upkeep = handle.clone();
        let _ = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            });
        handle.clone()
    })
}

/// `GET /metrics`: every metric of the process in the Prometheus text format.
pub fn metrics_router() -> Router {
    Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(
                    header::CONTENT_TYPE,
                    "text/plain; version=0.0.4; charset=utf-8",
                )],
                metrics_handle().render(),
            )
                .into_response()
        }),
    )
}

/// One JSON object per log line: `timestamp`, `level`, `target`, `message`, the event's other
/// fields, and `request_id`, `trace_id` and `span` from the spans it happened in (innermost
/// first).
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        let mut line = Map::new();
        line.insert(
            "timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        );
        line.insert("level".into(), Value::String(metadata.level().to_string()));
        line.insert("target".into(), Value::String(metadata.target().to_owned()));
        let mut fields = JsonVisitor(Map::new());
        event.record(&mut fields);
        line.insert(
            "message".into(),
            fields
                .0
                .remove("message")
                .unwrap_or(Value::String(String::new())),
        );
        line.extend(fields.0);
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                if !line.contains_key("span") {
                    line.insert("span".into(), Value::String(span.name().to_owned()));
                }
                let extensions = span.extensions();
                let Some(recorded) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                let Ok(Value::Object(recorded)) = serde_json::from_str::<Value>(&recorded.fields)
                else {
                    continue;
                };
                for key in ["request_id", "trace_id"] {
                    if let (false, Some(value)) = (line.contains_key(key), recorded.get(key)) {
                        line.insert(key.into(), value.clone());
                    }
                }
            }
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// An event's fields as JSON values.
struct JsonVisitor(Map<String, Value>);

impl Visit for JsonVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.into()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::Bool(value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().into(), Value::String(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}
