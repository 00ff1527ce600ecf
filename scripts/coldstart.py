#!/usr/bin/env python3
"""Cold start of a Lambda function binary against a Lambda Runtime API emulator on loopback.

The init duration is what Lambda reports as "Init Duration": the time from exec of the
bootstrap to its first `GET /2018-06-01/runtime/invocation/next`. The emulator then hands it
one event, waits for the response, and stops the process.

    coldstart.py BINARY EVENT.json [--runs N] [--env K=V ...]

Prints one JSON line: median, p90, min and max of the init duration and of the first
invocation, in milliseconds, and the first response (to check that the function worked).
"""

import argparse
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid

PREFIX = "/2018-06-01/runtime"


class Emulator(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, event: bytes):
        super().__init__(("127.0.0.1", 0), Handler)
        self.event = event
        self.first_next = None
        self.delivered_at = None
        self.responded_at = None
        self.response = None
        self.init_error = None
        self.handed_out = False
        self.done = threading.Event()
        self.log = []


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _reply(self, code, body=b"", headers=None):
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        s = self.server
        s.log.append(("GET", self.path, s.handed_out))
        if self.path != PREFIX + "/invocation/next":
            return self._reply(404)
        now = time.perf_counter()
        if s.first_next is None:
            s.first_next = now
        if s.handed_out:
            # The function is waiting for a second event; the measurement is over.
            s.done.wait(5)
            return self._reply(503)
        s.handed_out = True
        s.delivered_at = time.perf_counter()
        self._reply(
            200,
            s.event,
            {
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": str(uuid.uuid4()),
                "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 30_000),
                "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:paved",
                "Lambda-Runtime-Trace-Id": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
            },
        )

    def do_POST(self):
        s = self.server
        s.log.append(("POST", self.path))
        body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
        if self.path.endswith("/response") or self.path.endswith("/error"):
            s.responded_at = time.perf_counter()
            s.response = {"path": self.path.rsplit("/", 1)[-1], "body": body.decode(errors="replace")[:500]}
            self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})
            s.done.set()
        elif self.path == PREFIX + "/init/error":
            s.init_error = body.decode(errors="replace")[:500]
            self._reply(202, b'{"status":"OK"}', {"Content-Type": "application/json"})
            s.done.set()
        else:
            self._reply(404)


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("event")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--env", action="append", default=[])
    args = parser.parse_args()
    with open(args.event, "rb") as f:
        event = f.read()
    env = dict(os.environ)
    # Lambda sets neither. With either one on, every anyhow error captures a backtrace, and
    # the guardrails' Rego parser makes hundreds while it backtracks: 5-10 ms more per init.
    for name in ("RUST_BACKTRACE", "RUST_LIB_BACKTRACE"):
        env.pop(name, None)
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": os.path.basename(args.binary),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/paved",
            "AWS_LAMBDA_LOG_STREAM_NAME": "coldstart",
            "RUST_LOG": env.get("RUST_LOG", "warn"),
        }
    )
    for kv in args.env:
        k, _, v = kv.partition("=")
        env[k] = v
    inits, invocations, first_response = [], [], None
    for _ in range(args.runs):
        # A fresh emulator (and port) per run, so a killed process's last request can never
        # be mistaken for the next one's.
        server = Emulator(event)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{server.server_address[1]}"
        started = time.perf_counter()
        proc = subprocess.Popen([args.binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        finished = server.done.wait(60)
        proc.kill()
        _, stderr = proc.communicate()
        server.shutdown()
        server.server_close()
        if not finished or server.first_next is None or server.init_error:
            print(json.dumps({"binary": args.binary, "error": server.init_error or "no invocation",
                              "log": server.log, "stderr": stderr.decode(errors="replace")[:1500]}))
            sys.exit(1)
        inits.append((server.first_next - started) * 1000)
        invocations.append((server.responded_at - server.delivered_at) * 1000)
        first_response = first_response or server.response
    summary = lambda xs: {  # noqa: E731
        "median": round(statistics.median(xs), 2),
        "p90": round(percentile(xs, 90), 2),
        "min": round(min(xs), 2),
        "max": round(max(xs), 2),
    }
    print(json.dumps({
        "binary": os.path.basename(args.binary),
        "runs": args.runs,
        "init_ms": summary(inits),
        "first_invocation_ms": summary(invocations),
        "response": first_response,
    }))


if __name__ == "__main__":
    main()
