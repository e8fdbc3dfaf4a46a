"""A scripted HTTP server on 127.0.0.1 for tests and benchmarks of API clients (the judge, the API editors).

It runs in a background thread and answers each ``POST`` from a script: a list of :class:`Scripted` replies
used in request order, or a function ``(request, index) -> Scripted``; past the end of a list, or with no
script, :meth:`FakeHTTPServer.default_reply` answers. A reply can be delayed (a timeout for a short client
timeout), drop the connection, or cut its body halfway. The server records every request (``requests``: the
parsed body, JSON or multipart form; ``received``: path and headers) and the largest number in flight at once,
so tests check retries, caching and concurrency bounds against real HTTP, with the real client code.

Subclasses speak one API: they turn a :class:`Scripted` into a body (:meth:`FakeHTTPServer.render`) and say
what an unscripted request gets. A request the script should not see (a ``GET``; a subclass's health or
pre-flight check) is answered by :meth:`FakeHTTPServer.aside` and recorded in ``asides`` instead of ``requests``,
and :meth:`FakeHTTPServer.response_headers` adds headers to every answer.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Sequence


@dataclass
class Scripted:
    """One scripted answer: an HTTP status and body, after ``delay`` seconds, or a dropped connection.

    The body is ``body`` (raw bytes) if given, else ``json`` (an object, or a function of the parsed request
    returning one), else whatever the server's :meth:`~FakeHTTPServer.render` makes of the other fields.
    """

    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # raw body (garbage, an HTML error page)
    json: Any = None  # a JSON object, or request -> JSON object
    drop: bool = False  # close the connection without answering
    cut_body: bool = False  # send the headers and half the body, then close the connection


def http_error(status: int, retry_after: float | None = None, code: str | int | None = None,
               message: str | None = None, **kw) -> Scripted:
    """An error answer in the ``{"error": {...}}`` shape OpenAI and Google APIs share."""
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    error = {"message": message or f"scripted HTTP {status}", "type": "scripted",
             "code": status if code is None else code}
    return Scripted(status=status, headers=headers, body=json.dumps({"error": error}).encode(), **kw)


def dropped() -> Scripted:
    return Scripted(drop=True)


def parse_body(content_type: str, raw: bytes) -> dict:
    """A JSON object, or the fields of a multipart form (files as bytes, text fields as str); else ``{}``."""
    if content_type.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
        fields: dict = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            fields[name] = payload if part.get_filename() else payload.decode("utf-8", "replace")
        return fields
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


Script = Sequence[Scripted] | Callable[[dict, int], Scripted] | None


class FakeHTTPServer:
    def __init__(self, script: Script = None, latency: float = 0.0):
        self.script = script
        self.latency = latency  # added to every answer
        self.requests: list[dict] = []  # parsed bodies, in arrival order
        self.received: list[dict] = []  # {"path": ..., "headers": {...}} for each request, same order
        self.asides: list[dict] = []  # requests answered outside the script: {"method", "path", "headers", "body"}
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms delayed-ACK stall

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                request = parse_body(self.headers.get("Content-Type") or "", raw)
                server._answer(self, request, {"method": "POST", "path": self.path,
                                               "headers": dict(self.headers.items())})

            def do_GET(self) -> None:  # noqa: N802
                server._answer(self, {}, {"method": "GET", "path": self.path, "headers": dict(self.headers.items())})

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False
            request_queue_size = 256

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def base_url(self) -> str:
        """What a client is configured with (an API's prefix, such as ``/v1``, included)."""
        return self.root_url

    def default_reply(self, request: dict, index: int) -> Scripted:
        return Scripted(status=404, body=b'{"error": {"message": "nothing scripted for this request"}}')

    def aside(self, request: dict, received: dict) -> Scripted | None:
        """The answer to a request outside the script (None: the script answers it). Default: a GET is a 404."""
        if received.get("method") == "GET":
            return Scripted(status=404, body=b'{"error": {"message": "no such endpoint"}}')
        return None

    def records_aside(self, request: dict) -> bool:
        """Whether an aside goes into ``asides`` (a subclass may keep some elsewhere)."""
        return True

    def response_headers(self, request: dict, reply: Scripted) -> dict[str, str]:
        """Headers of an answer: the reply's own (subclasses add the server's)."""
        return dict(reply.headers)

    def render(self, request: dict, reply: Scripted) -> bytes:
        """The body of ``reply`` to ``request``; subclasses build their API's replies from the other fields."""
        if reply.body is not None:
            return reply.body
        payload = reply.json(request) if callable(reply.json) else reply.json
        return json.dumps(payload if payload is not None else {}).encode()

    def _pick(self, request: dict, index: int) -> Scripted:
        if callable(self.script):
            return self.script(request, index)
        if self.script and index < len(self.script):
            return self.script[index]
        return self.default_reply(request, index)

    def _answer(self, handler: BaseHTTPRequestHandler, request: dict, received: dict) -> None:
        side = self.aside(request, received)
        with self._lock:
            if side is None:
                index = len(self.requests)
                self.requests.append(request)
                self.received.append(received)
            elif self.records_aside(request):
                self.asides.append({**received, "body": request})
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            reply = side if side is not None else self._pick(request, index)
            self._stop.wait(self.latency + reply.delay)
            if reply.drop:
                handler.close_connection = True
                return
            body = self.render(request, reply)
            handler.send_response(reply.status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            for name, value in self.response_headers(request, reply).items():
                handler.send_header(name, value)
            handler.end_headers()
            if reply.cut_body:
                handler.wfile.write(body[:len(body) // 2])
                handler.close_connection = True
                return
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout)
        finally:
            with self._lock:
                self.in_flight -= 1

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
