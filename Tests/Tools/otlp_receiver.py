#!/usr/bin/env python3
"""A real OTLP/gRPC trace receiver: accepts ExportTraceServiceRequest and appends every span to SPANS_FILE
("-": standard output) as one JSON object per line: service, name, kind, trace_id, span_id, parent_span_id (hex),
attributes (as text) and status code.

    otlp_receiver.py SPANS_FILE [--listen HOST:PORT] [--health-port PORT]

The tracing tests run it on 127.0.0.1 and a free port (the default; "listening PORT" is printed on stdout). The
containers test runs it as the stand-in for Jaeger all-in-one: on 0.0.0.0:4317, with Jaeger's health check
(200 on / of the admin port, 14269)."""
import argparse
import http.server
import json
import signal
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
        with self.lock:
            if self.path == "-":
                sys.stdout.writelines(line + "\n" for line in lines)
                sys.stdout.flush()
            else:
                with open(self.path, "a", encoding="utf-8") as spans:
                    spans.writelines(line + "\n" for line in lines)
        return trace_service_pb2.ExportTraceServiceResponse()


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status":"Server available"}')

    def log_message(self, *arguments):
        pass


def main():
    parser = argparse.ArgumentParser(description="A real OTLP/gRPC trace receiver that writes spans as JSON lines.")
    parser.add_argument("spans_file", help='where the spans go, one JSON object per line ("-": standard output)')
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT of the OTLP/gRPC server")
    parser.add_argument("--health-port", type=int, help="answer 200 on this HTTP port, as Jaeger's admin port does")
    arguments = parser.parse_args()
    if arguments.health_port is not None:
        health = http.server.ThreadingHTTPServer(("0.0.0.0", arguments.health_port), Health)
        threading.Thread(target=health.serve_forever, daemon=True).start()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Receiver(arguments.spans_file), server)
    port = server.add_insecure_port(arguments.listen)
    server.start()
    # As a container's first process it has no default SIGTERM action: `docker compose stop` would wait its grace.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"listening {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
