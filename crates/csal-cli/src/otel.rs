//! OpenTelemetry traces (feature `otel`): CSAL's `tracing` spans (the
//! layer's `csal` span with module, provider, operation, bytes and error
//! kind; the admin server's and the gateway's) exported over OTLP/HTTP
//! with protobuf bodies to `{endpoint}/v1/traces`.
//!
//! The SDK's batch processor runs on its own thread; its requests go out
//! through the workspace's async reqwest on the command's tokio runtime
//! ([`RuntimeHttp`]), so no blocking HTTP client or gRPC stack is linked.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// How long one export may take (connect included).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The exporter's pipeline; [`Traces::shutdown`] sends what is buffered.
pub struct Traces(Option<SdkTracerProvider>);

impl Traces {
    /// Flush and stop (before the runtime the requests run on goes away).
    pub fn shutdown(self) {
        if let Some(provider) = self.0
            && let Err(e) = provider.shutdown()
        {
            eprintln!("csal: warning: sending the last traces failed: {e}");
        }
    }
}

/// The tracing layer exporting CSAL's spans (info and above, `csal*`
/// targets only: not the exporter's own HTTP client), or none without an
/// endpoint.
pub fn layer<S>(
    endpoint: Option<&str>,
    runtime: tokio::runtime::Handle,
) -> (Option<Box<dyn Layer<S> + Send + Sync>>, Traces)
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    let Some(endpoint) = endpoint.map(str::trim).filter(|e| !e.is_empty()) else { return (None, Traces(None)) };
    let client = match reqwest::Client::builder().timeout(EXPORT_TIMEOUT).connect_timeout(EXPORT_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("csal: warning: no trace export (HTTP client: {e})");
            return (None, Traces(None));
        }
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(RuntimeHttp { client, runtime })
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .with_timeout(EXPORT_TIMEOUT)
        .build();
    let exporter = match exporter {
        Ok(e) => e,
        Err(e) => {
            // The endpoint may carry credentials: not repeated here.
            eprintln!("csal: warning: no trace export: {e}");
            return (None, Traces(None));
        }
    };
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("csal");
    }
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build();
    let tracer = provider.tracer("csal");
    let only_csal = tracing_subscriber::filter::Targets::new().with_target("csal", tracing::Level::INFO);
    let layer = tracing_opentelemetry::layer().with_tracer(tracer).with_filter(only_csal).boxed();
    (Some(layer), Traces(Some(provider)))
}

/// reqwest's async client driven by the command's tokio runtime (the
/// batch processor's thread has none of its own).
#[derive(Debug)]
struct RuntimeHttp {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for RuntimeHttp {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime.spawn(async move { client.send_bytes(request).await }).await?
    }
}
