import Foundation
import Logging
import Metrics
import OTel
import Prometheus
import ServiceLifecycle
import Tracing

/// The process's metrics and traces. Metrics always go to one Prometheus registry (shown by `MetricsEndpoint`);
/// traces go to an OTLP collector over gRPC when the standard `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT` names
/// one, and are off otherwise (the no-op tracer: nothing is recorded, the call path stays as it was).
public enum Telemetry {
    /// What `/metrics` shows.
    public static let registry = PrometheusCollectorRegistry()

    /// Every latency histogram's buckets: from 100 µs (a cached token check) to 10 s (the longest deadline).
    public static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    /// swift-metrics allows one bootstrap per process.
    private static let metricsInstalled: Void = {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = latencyBuckets
        factory.defaultValueHistogramBuckets = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
        MetricsSystem.bootstrap(factory)
    }()

    /// Installs the metrics backend and, when an OTLP endpoint is configured, the tracer. Call once, before any
    /// metric is made (a metric made earlier stays with the no-op backend).
    /// - Returns: the trace exporter, to run first in the service group so that it stops last and sends the
    ///   spans of the shutdown too; `nil` when tracing is off.
    /// - Throws: `OTel.Configuration.Error` for a bad `OTEL_*` value.
    public static func bootstrap(
        serviceName: String,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        logger: Logger
    ) throws -> (any Service)? {
        _ = metricsInstalled
        BuildInfo.record(service: serviceName)
        guard tracingEnabled(environment) else { return nil }
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        // The collector's gRPC port (4317) unless OTEL_EXPORTER_OTLP_PROTOCOL says otherwise.
        configuration.traces.otlpExporter.protocol = .grpc
        configuration.metrics.enabled = false
        configuration.logs.enabled = false
        configuration.diagnosticLogger = .custom(logger)
        configuration.diagnosticLogLevel = .warning
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        logger.info(
            "tracing on: spans go to the OTLP collector",
            metadata: [
                "endpoint":
                    "\(environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"] ?? "")"
            ])
        return backend.service
    }

    /// Tracing is on when an OTLP endpoint is set, unless `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`.
    static func tracingEnabled(_ environment: [String: String]) -> Bool {
        let endpoint = environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] ?? environment["OTEL_EXPORTER_OTLP_ENDPOINT"]
        return !(endpoint ?? "").isEmpty && environment["OTEL_SDK_DISABLED"]?.lowercased() != "true"
            && environment["OTEL_TRACES_EXPORTER"]?.lowercased() != "none"
    }

    /// Puts `trace_id` and `span_id` of the current span on every log line written inside it.
    public static let logMetadata: Logger.MetadataProvider = OTel.makeLoggingMetadataProvider()
}

/// The build that runs, as the `shippy_build_info` gauge (always 1; the labels carry the facts).
public enum BuildInfo {
    /// Bumped with each release of the system.
    public static let version = "0.6.0"

    static func record(service: String) {
        Gauge(label: "shippy_build_info", dimensions: [("service", service), ("version", version)]).record(1)
    }
}
