import ShippyDomain
import Tracing

/// Runs `body` in a span named `name` (a database call, a bcrypt work, a message), as the child of `context` or of
/// the current span. With tracing off, or outside any trace (background work such as a sweep or a gauge refresh),
/// it only runs `body`: no span, and `name` and `attributes` are never built, so the hot paths pay nothing for
/// them. A failure marks the span with its kind only (`error.type`: the `ShippyError` code or the error's type),
/// never its message: messages may quote input, and spans leave the process.
public func traced<T, Failure: Error>(
    _ name: @autoclosure () -> String,
    ofKind kind: SpanKind = .client,
    context: ServiceContext? = nil,
    attributes: @autoclosure () -> [String: String] = [:],
    isolation: isolated (any Actor)? = #isolation,
    _ body: () async throws(Failure) -> T
) async throws(Failure) -> T {
    guard let tracer = activeTracer(), let parent = context ?? .current else { return try await body() }
    let span = tracer.startSpan(name(), context: parent, ofKind: kind)
    defer { span.end() }
    for (key, value) in attributes() { span.attributes[key] = value }
    let result: Result<T, Failure> = await ServiceContext.$current.withValue(span.context) {
        do throws(Failure) {
            return .success(try await body())
        } catch {
            return .failure(error)
        }
    }
    if case .failure(let error) = result {
        let kind = (error as? ShippyError).map { "\($0.code)" } ?? "\(type(of: error))"
        span.attributes["error.type"] = kind
        span.setStatus(SpanStatus(code: .error, message: kind))
    }
    return try result.get()
}

/// The tracer when tracing is on; `nil` with the no-op tracer, so that callers skip building spans altogether.
func activeTracer() -> (any Tracer)? {
    let tracer = InstrumentationSystem.tracer
    return tracer is NoOpTracer ? nil : tracer
}

/// The current trace context as text headers (`traceparent`, `tracestate`): what an event carries to its consumer,
/// in the outbox row and then in the NATS message's headers. Empty when tracing is off or there is no trace.
public func currentTraceHeaders() -> [String: String] {
    var headers: [String: String] = [:]
    if let context = ServiceContext.current {
        InstrumentationSystem.instrument.inject(context, into: &headers, using: HeaderCarrier())
    }
    return headers
}

/// The trace context that `headers` carry, to continue that trace (`traced(…, context:)`); `nil` when none.
public func traceContext(from headers: [String: String]) -> ServiceContext? {
    guard !headers.isEmpty else { return nil }
    var context = ServiceContext.topLevel
    InstrumentationSystem.instrument.extract(headers, into: &context, using: HeaderCarrier())
    return context
}

private struct HeaderCarrier: Extractor, Injector {
    func extract(key: String, from headers: [String: String]) -> String? { headers[key] }
    func inject(_ value: String, forKey key: String, into headers: inout [String: String]) { headers[key] = value }
}
