import GRPCCore
import Metrics
import OTelSemanticConventions
import ShippyDomain
import Synchronization
import Tracing

/// Counts, times and traces every call a server takes: `grpc_server_handled_total` by service, method and
/// status code, the `grpc_server_handling_seconds` histogram, `grpc_server_in_flight`, and a server span that
/// continues the caller's trace (W3C `traceparent` in the metadata). The handler runs inside the span, so its
/// log lines carry the trace and its database calls and outgoing calls become the span's children.
public struct ServerCallTelemetry: ServerInterceptor {
    private let metrics = RPCMetrics(side: "server")

    public init() {}

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        var span: (any Span)?
        if let tracer = activeTracer() {
            var parent = ServiceContext.current ?? .topLevel
            InstrumentationSystem.instrument.extract(request.metadata, into: &parent, using: MetadataCarrier())
            let started = tracer.startSpan(context.descriptor.fullyQualifiedMethod, context: parent, ofKind: .server)
            started.describe(context.descriptor)
            span = started
        }
        let call = metrics.start(context.descriptor, span: span)
        var response: StreamingServerResponse<Output>
        do {
            response = try await withSpanContext(of: span) { try await next(request, context) }
        } catch {
            call.finish(error: error)
            throw error
        }
        switch response.accepted {
        case .success(var contents):
            // The response is written after this returns: the call ends when its producer does.
            let producer = contents.producer
            contents.producer = { writer in
                do {
                    let trailers = try await producer(writer)
                    call.finish(error: nil)
                    return trailers
                } catch {
                    call.finish(error: error)
                    throw error
                }
            }
            response.accepted = .success(contents)
        case .failure(let error):
            call.finish(error: error)
        }
        return response
    }
}

/// The same for the calls a service makes: `grpc_client_*` metrics and a client span whose context travels in
/// the request's metadata, so that the callee's span is its child.
public struct ClientCallTelemetry: ClientInterceptor {
    private let metrics = RPCMetrics(side: "client")

    public init() {}

    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        var request = request
        var span: (any Span)?
        if let tracer = activeTracer() {
            let started = tracer.startSpan(context.descriptor.fullyQualifiedMethod, ofKind: .client)
            started.describe(context.descriptor)
            InstrumentationSystem.instrument.inject(started.context, into: &request.metadata, using: MetadataCarrier())
            span = started
        }
        let call = metrics.start(context.descriptor, span: span)
        var response: StreamingClientResponse<Output>
        do {
            response = try await withSpanContext(of: span) { try await next(request, context) }
        } catch {
            call.finish(error: error)
            throw error
        }
        switch response.accepted {
        case .success(var contents):
            // The status arrives at the end of the body: the call ends when the caller has read it.
            contents.bodyParts = RPCAsyncSequence(wrapping: FinishingSequence(base: contents.bodyParts, call: call))
            response.accepted = .success(contents)
        case .failure(let error):
            call.finish(error: error)
        }
        return response
    }
}

/// Runs `body` as the span's child when there is a span (tracing on), or as it is.
private func withSpanContext<T>(of span: (any Span)?, _ body: () async throws -> T) async throws -> T {
    guard let span else { return try await body() }
    return try await ServiceContext.$current.withValue(span.context) { try await body() }
}

/// A response body that ends its call's metrics and span when it is read to the end or fails.
private struct FinishingSequence<Element: Sendable>: AsyncSequence, Sendable {
    let base: RPCAsyncSequence<Element, any Error>
    let call: RPCMetrics.Call

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: RPCAsyncSequence<Element, any Error>.AsyncIterator
        let call: RPCMetrics.Call

        mutating func next() async throws -> Element? {
            do {
                guard let element = try await base.next() else {
                    call.finish(error: nil)
                    return nil
                }
                return element
            } catch {
                call.finish(error: error)
                throw error
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), call: call) }
}

/// The metric instruments of each method, made once and kept (making one looks it up in the registry).
final class RPCMetrics: Sendable {
    let side: String
    private let methods = Mutex<[MethodDescriptor: Instruments]>([:])

    init(side: String) { self.side = side }

    final class Instruments: Sendable {
        let inFlight: Meter
        let latency: Metrics.Timer
        /// The count of calls that ended `OK`, made up front: most calls end so.
        let succeeded: Counter
        private let dimensions: [(String, String)]
        private let side: String
        private let failed = Mutex<[String: Counter]>([:])

        init(side: String, method: MethodDescriptor) {
            dimensions = [("grpc_service", method.service.fullyQualifiedService), ("grpc_method", method.method)]
            self.side = side
            inFlight = Meter(label: "grpc_\(side)_in_flight", dimensions: dimensions)
            latency = Metrics.Timer(label: "grpc_\(side)_handling_seconds", dimensions: dimensions)
            succeeded = Counter(label: "grpc_\(side)_handled_total", dimensions: dimensions + [("grpc_code", "OK")])
        }

        func failed(_ code: String) -> Counter {
            failed.withLock { counters in
                if let counter = counters[code] { return counter }
                let counter = Counter(
                    label: "grpc_\(side)_handled_total", dimensions: dimensions + [("grpc_code", code)])
                counters[code] = counter
                return counter
            }
        }
    }

    /// One call under way, with its span when tracing is on; `finish` may be called more than once (only the
    /// first counts).
    final class Call: Sendable {
        let instruments: Instruments
        let span: (any Span)?
        let start = ContinuousClock.now
        private let finished = Atomic(false)

        init(_ instruments: Instruments, span: (any Span)?) {
            self.instruments = instruments
            self.span = span
        }

        func finish(error: (any Error)?) {
            guard !finished.exchange(true, ordering: .relaxed) else { return }
            instruments.latency.recordNanoseconds((ContinuousClock.now - start).nanoseconds)
            instruments.inFlight.decrement()
            guard let error else {
                instruments.succeeded.increment()
                span?.attributes[OTelAttribute.rpc.response.statusCode] = "OK"
                span?.end()
                return
            }
            let codeName = Self.name((error as? RPCError)?.code ?? .unknown)
            instruments.failed(codeName).increment()
            if let span {
                // Only the code: an error's message may quote input, and spans leave the process.
                span.attributes[OTelAttribute.rpc.response.statusCode] = codeName
                span.setStatus(SpanStatus(code: .error, message: codeName))
                span.attributes[OTelAttribute.error.type] = codeName
                span.end()
            }
        }

        /// `INVALID_ARGUMENT` for `.invalidArgument`: the names of the gRPC specification.
        static func name(_ code: RPCError.Code) -> String {
            switch code {
            case .cancelled: "CANCELLED"
            case .unknown: "UNKNOWN"
            case .invalidArgument: "INVALID_ARGUMENT"
            case .deadlineExceeded: "DEADLINE_EXCEEDED"
            case .notFound: "NOT_FOUND"
            case .alreadyExists: "ALREADY_EXISTS"
            case .permissionDenied: "PERMISSION_DENIED"
            case .resourceExhausted: "RESOURCE_EXHAUSTED"
            case .failedPrecondition: "FAILED_PRECONDITION"
            case .aborted: "ABORTED"
            case .outOfRange: "OUT_OF_RANGE"
            case .unimplemented: "UNIMPLEMENTED"
            case .internalError: "INTERNAL"
            case .unavailable: "UNAVAILABLE"
            case .dataLoss: "DATA_LOSS"
            case .unauthenticated: "UNAUTHENTICATED"
            default: "UNKNOWN"
            }
        }
    }

    func start(_ method: MethodDescriptor, span: (any Span)?) -> Call {
        let instruments = methods.withLock { methods in
            if let instruments = methods[method] { return instruments }
            let instruments = Instruments(side: side, method: method)
            methods[method] = instruments
            return instruments
        }
        instruments.inFlight.increment()
        return Call(instruments, span: span)
    }
}

extension Span {
    /// The semantic conventions' attributes of a gRPC call.
    fileprivate func describe(_ method: MethodDescriptor) {
        attributes[OTelAttribute.rpc.system.name] = "grpc"
        attributes[OTelAttribute.rpc.method] = method.fullyQualifiedMethod
    }
}

/// gRPC metadata as the carrier of trace context (`traceparent`, `tracestate`).
struct MetadataCarrier: Extractor, Injector {
    func extract(key: String, from metadata: Metadata) -> String? {
        var values = metadata[stringValues: key].makeIterator()
        return values.next()
    }

    func inject(_ value: String, forKey key: String, into metadata: inout Metadata) {
        metadata.replaceOrAddString(value, forKey: key)
    }
}
