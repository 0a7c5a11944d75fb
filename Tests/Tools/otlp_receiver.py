#!/usr/bin/env python3
"""A real OTLP/gRPC trace receiver for the tracing tests: accepts ExportTraceServiceRequest on 127.0.0.1 (a free
port, printed as "listening PORT" on stdout) and appends every span to SPANS_FILE as one JSON object per line:
service, name, kind, trace_id, span_id, parent_span_id (hex), attributes (as text) and status code."""
import json
import sys
import threading
from concurrent import futures

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


def text(value):
    kind = value.WhichOneof("value")
    return "" if kind is None else str(getattr(value, kind))


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def Export(self, request, context):
        lines = []
        for resource_spans in request.resource_spans:
            resource = {a.key: text(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    lines.append(json.dumps({
                        "service": resource.get("service.name", ""),
                        "name": span.name,
                        "kind": span.kind,
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "attributes": {a.key: text(a.value) for a in span.attributes},
                        "status": span.status.code,
                    }))
        with self.lock, open(self.path, "a", encoding="utf-8") as spans:
            spans.writelines(line + "\n" for line in lines)
        return trace_service_pb2.ExportTraceServiceResponse()


def main():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Receiver(sys.argv[1]), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
