"""The HTTP side of ``edge-ae camera --serve``, from the standard library: one thread per
connection, at most ``max_clients`` of them, and only these paths:

    GET  /                 the page (edge_ae/video/web/index.html)
    GET  /stream.mjpg      MJPEG (multipart/x-mixed-replace) of ?view=before|after|side
    GET  /stats            the live figures, JSON
    GET  /flagged/N.jpg    a thumbnail of a flagged frame
    POST /control          {"strength": x, "denoise": true|false}, JSON, applied on the next frame

Anything else is 404; with a token, any request without it is 401 first. Requests are bounded
(8 KiB of request line and headers, 1 KiB of body), every socket read or write times out, and a
connection over the limit gets 503 at once. Without a token on a loopback address only loopback
Host names are answered, so a web page elsewhere cannot reach the camera through DNS rebinding;
a POST must be JSON from the page's own origin (no cross-site form posts).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import re
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib import resources
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from edge_ae.video.serve_options import LOOPBACK_NAMES, VIEWS, ServeOptions


class ServeSink(Protocol):
    """What the page server uses of ``edge_ae.video.serve.ServeSink`` (which starts this server:
    named here as a protocol so the import points one way)."""

    hub: Any  # serve.FrameHub: the newest JPEG of each view, the flagged-frame thumbnails

    def stats(self) -> dict[str, Any]: ...

    def control(self, change: dict[str, Any]) -> None: ...

MAX_HEAD = 8192  # request line + headers, bytes
MAX_BODY = 1024
# Kernel send buffer per connection: a few frames, so a client on a slow link is sent recent frames
# rather than a backlog, and a stalled one reaches its timeout soon instead of after megabytes.
SEND_BUFFER = 256 * 1024
BOUNDARY = "edge-ae-frame"


def page() -> tuple[bytes, str]:
    """The page, and the Content-Security-Policy that allows exactly its inline script and style."""
    html = resources.files("edge_ae.video").joinpath("web/index.html").read_bytes()
    hashes = {}
    for tag in ("script", "style"):
        found = re.search(rb"<%s>(.*?)</%s>" % (tag.encode(), tag.encode()), html, re.S)
        body = found.group(1) if found else b""
        hashes[tag] = "'sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode() + "'"
    csp = (f"default-src 'none'; script-src {hashes['script']}; style-src {hashes['style']}; img-src 'self' data:; "
           "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return html, csp


class _RequestTooLarge(http.client.HTTPException):
    """Raised inside header parsing, which answers it with 431."""


class _BoundedReader:
    """The connection's input, read straight from the socket: the request head is cut off after
    ``limit`` bytes and after ``seconds`` in all (a client trickling a byte at a time would
    otherwise hold its slot for ever, each read well within the socket's timeout)."""

    def __init__(self, sock: socket.socket, limit: int, seconds: float) -> None:
        self.sock, self.left = sock, limit
        self.deadline = time.monotonic() + seconds
        self.buffer = b""

    def readline(self, size: int = -1) -> bytes:
        """Called for the request line and each header line only."""
        limit = self.left if size < 0 else min(size, self.left)
        if limit <= 0:
            raise _RequestTooLarge(f"request head over {MAX_HEAD} bytes")
        while b"\n" not in self.buffer and len(self.buffer) < limit:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("request head took too long")  # handle_one_request drops the connection
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(4096)
            if not chunk:
                break
            self.buffer += chunk
        end = self.buffer.find(b"\n") + 1 or len(self.buffer)
        line, self.buffer = self.buffer[:min(end, limit)], self.buffer[min(end, limit):]
        self.left -= len(line)
        return line

    def read(self, size: int) -> bytes:
        """A body of ``size`` bytes (checked against MAX_BODY by the caller), with the socket's timeout."""
        while len(self.buffer) < size:
            chunk = self.sock.recv(size - len(self.buffer))
            if not chunk:
                break
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def close(self) -> None:
        pass  # the socket is the server's to close


class PageServer(HTTPServer):
    """Listens on ``options.host:port`` and runs ``serve_forever`` in its own thread."""

    daemon_threads = True
    request_queue_size = 16

    def __init__(self, options: ServeOptions, sink: ServeSink) -> None:
        self.options, self.sink = options, sink
        self.address_family = socket.AF_INET6 if ":" in options.host else socket.AF_INET
        self.page, self.csp = page()
        self._lock = threading.Lock()
        self._conns: dict[threading.Thread, socket.socket] = {}
        self._rejecting = 0
        self._stopping = False
        super().__init__((options.host, options.port), _Handler)
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="edge-ae-serve", daemon=True)

    def server_bind(self) -> None:
        # HTTPServer's own looks the host's name up in DNS, which can hang on a board offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._conns)

    def start(self) -> None:
        self._thread.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Runs on the accepting thread: a connection over the limit is answered 503 in a short-
        lived thread (itself bounded), beyond that closed at once; none waits for a slot."""
        with self._lock:
            full = len(self._conns) >= self.options.max_clients or self._stopping
            if full and self._rejecting >= self.options.max_clients:
                self.shutdown_request(request)
                return
            thread = threading.Thread(target=self._reject if full else self._serve, args=(request, client_address),
                                      name="edge-ae-serve-client", daemon=True)
            if full:
                self._rejecting += 1
            else:
                self._conns[thread] = request
        thread.start()

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # a client that went away mid-request: nothing to report
            pass
        finally:
            _drain(request)
            self.shutdown_request(request)
            with self._lock:
                self._conns.pop(threading.current_thread(), None)

    def _reject(self, request: Any, _client_address: Any) -> None:
        try:
            request.settimeout(1.0)
            request.recv(MAX_HEAD)  # read what was sent, so that closing does not reset the connection
            body = b"too many clients; try again shortly\n"
            request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 5\r\n"
                            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        except OSError:
            pass
        finally:
            self.shutdown_request(request)
            with self._lock:
                self._rejecting -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # library code never prints; a broken connection is the client's business

    def stop(self, timeout: float = 2.0) -> None:
        """Stop accepting, end every connection (a client stalled in a write included), wait for
        their threads up to ``timeout`` seconds."""
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
            conns = dict(self._conns)
        if self._thread.is_alive():
            self.shutdown()
        self.server_close()
        for conn in conns.values():
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in send or recv
            except OSError:
                pass
        for thread in conns:
            thread.join(timeout / max(len(conns), 1))


def _drain(conn: socket.socket, limit: int = 65536) -> None:
    """Read (without waiting) what the client sent and was not read, such as the rest of a request
    refused as too large: closing over unread data resets the connection, and the client would
    lose the answer."""
    try:
        conn.setblocking(False)
        while limit > 0 and (chunk := conn.recv(min(limit, 16384))):
            limit -= len(chunk)
    except OSError:
        pass


class _Handler(BaseHTTPRequestHandler):
    server: PageServer
    protocol_version = "HTTP/1.0"  # one request per connection: a slot is never held between requests
    server_version = "edge-ae"
    sys_version = ""

    def setup(self) -> None:
        self.request.settimeout(self.server.options.timeout)  # every read and write of this connection
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        super().setup()
        self.rfile.close()  # the buffered reader is not used: its reads could not keep a deadline
        self.rfile = _BoundedReader(self.request, MAX_HEAD, self.server.options.timeout)  # type: ignore[assignment]

    def parse_request(self) -> bool:
        line: bytes = getattr(self, "raw_requestline", b"")  # set by handle_one_request; untyped in typeshed
        if not line.endswith(b"\n"):  # cut off by the size limit
            self.requestline, self.request_version, self.command = "", "HTTP/1.0", ""
            self.send_error(414, f"request line over {MAX_HEAD} bytes")
            return False
        return super().parse_request()

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- routing ------------------------------------------------------------------------------

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not self._allowed(query):
            return
        if url.path in ("/", "/index.html"):
            self._send(200, self.server.page, "text/html; charset=utf-8", csp=self.server.csp)
        elif url.path == "/stats":
            self._send_json(200, self.server.sink.stats())
        elif url.path == "/stream.mjpg":
            view = query.get("view", ["side"])[0]
            if view not in VIEWS:
                self._send_json(400, {"error": f"view must be one of {', '.join(VIEWS)}, got {view!r}"})
            else:
                self._stream(view)
        elif (found := re.fullmatch(r"/flagged/(\d{1,12})\.jpg", url.path)) is not None:
            data = self.server.sink.hub.thumbnail(int(found.group(1)))
            if data is None:
                self._send(404, b"no longer kept\n", "text/plain")
            else:
                self._send(200, data, "image/jpeg")
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        if not self._allowed(parse_qs(url.query)):
            return
        if url.path != "/control":
            self._send(404, b"not found\n", "text/plain")
            return
        if self.headers.get_content_type() != "application/json":
            self._send_json(415, {"error": "expected Content-Type application/json"})
            return
        origin = self.headers.get("Origin")
        if origin and urlsplit(origin).netloc != self.headers.get("Host", ""):
            self._send_json(403, {"error": "requests from other sites are refused"})
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send_json(411, {"error": "expected a Content-Length"})
            return
        if not 0 < length <= MAX_BODY:
            self._send_json(413, {"error": f"expected a body of 1 to {MAX_BODY} bytes, got {length}"})
            return
        try:
            change = json.loads(self.rfile.read(length))
            if not isinstance(change, dict):
                raise ValueError(f"expected a JSON object, got {type(change).__name__}")
            self.server.sink.control(change)
        except ValueError as exc:  # bad JSON (JSONDecodeError is one) or a value out of range
            self._send_json(400, {"error": str(exc)})
            return
        self._send_json(200, self.server.sink.stats())

    def do_HEAD(self) -> None:
        self._send(405, b"", "text/plain")

    # -- checks -------------------------------------------------------------------------------

    def _allowed(self, query: dict[str, list[str]]) -> bool:
        """Token first (401 even for paths that do not exist), then the Host name."""
        options = self.server.options
        self.request.settimeout(options.timeout)  # the head is read: each read or write gets the full time again
        if options.token is not None:
            given = query.get("token", [""])[0]
            auth = self.headers.get("Authorization", "")
            if auth.lower().startswith("bearer "):
                given = auth[7:].strip()
            if not hmac.compare_digest(given.encode(), options.token.encode()):
                self._send(401, b"token required\n", "text/plain", extra={"WWW-Authenticate": 'Bearer realm="edge-ae"'})
                return False
        elif options.loopback:
            host = self.headers.get("Host", "")
            name = host[1:host.find("]")] if host.startswith("[") else host.split(":")[0]
            if name.lower() not in LOOPBACK_NAMES:
                self._send(421, b"this server answers only to localhost\n", "text/plain")
                return False
        return True

    # -- responses ----------------------------------------------------------------------------

    def _head(self, code: int, content_type: str, *, length: int | None = None, csp: str | None = None,
              extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")  # the token may be in the address
        self.send_header("Content-Security-Policy", csp or "default-src 'none'; frame-ancestors 'none'")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()

    def _send(self, code: int, body: bytes, content_type: str, **head: Any) -> None:
        self._head(code, content_type, length=len(body), **head)
        self.wfile.write(body)

    def _send_json(self, code: int, value: Any) -> None:
        self._send(code, json.dumps(value, allow_nan=False).encode(), "application/json")

    def _stream(self, view: str) -> None:
        """Send the newest frame of ``view`` each time there is a newer one, until the client goes
        or the server stops. A write that stalls for ``timeout`` seconds ends the connection."""
        hub = self.server.sink.hub
        self._head(200, f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        sent = 0
        with hub.watch(view):
            while not hub.closed:
                item = hub.next_jpeg(view, sent, timeout=1.0)
                if item is None:
                    continue
                sent, data = item
                try:
                    self.wfile.write(b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                     % (BOUNDARY.encode(), len(data), data))
                except OSError:  # gone, or stalled past the timeout: either way this connection is over
                    return
