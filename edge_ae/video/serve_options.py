"""Where and how ``edge-ae camera --serve`` serves its page: the options, checked when made, and
the names both the sink (``serve.py``) and the HTTP server (``webserver.py``) use, below both."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

VIEWS = ("before", "after", "side")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class ServeOptions:
    """Where and how to serve the page.

    ``host`` 127.0.0.1 (this machine only) unless another address is given ("0.0.0.0": every
    interface); ``port`` 0 picks a free one. With ``token`` every request must carry it (``?token=``
    or an ``Authorization: Bearer`` header). ``max_clients`` bounds simultaneous connections (more
    get 503); ``timeout`` (seconds) ends a connection that stalls reading or writing. Frames wider
    than ``max_width`` are shrunk before encoding; ``thumbnails`` flagged frames are kept, at most
    one every ``thumbnail_every`` seconds."""

    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    max_clients: int = 8
    timeout: float = 10.0
    jpeg_quality: int = 80
    max_width: int = 1280
    thumbnails: int = 6
    thumbnail_every: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be from 0 to 65535, got {self.port}")
        if self.token is not None and (len(self.token) < 8 or not self.token.isascii() or not self.token.isprintable()
                                       or " " in self.token):
            raise ValueError("token must be at least 8 printable ASCII characters without spaces "
                             f"(a short token is guessed), got {len(self.token)} characters")
        if self.max_clients < 1 or not self.timeout > 0 or not 1 <= self.jpeg_quality <= 100 or self.max_width < 16:
            raise ValueError("max_clients >= 1, timeout > 0, jpeg_quality 1-100 and max_width >= 16 expected, got "
                             f"{self.max_clients}, {self.timeout}, {self.jpeg_quality}, {self.max_width}")

    @classmethod
    def parse(cls, address: str, **options: Any) -> ServeOptions:
        """``PORT``, ``HOST:PORT`` or ``[IPv6]:PORT`` as typed after ``--serve``."""
        text = address.strip()
        host, sep, port = text.rpartition(":")
        if not sep:
            host = cls.host
        elif host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host or not host:
            raise ValueError(f"expected [HOST:]PORT such as 8080 or 0.0.0.0:8080 ([::]:8080 for IPv6), got {address!r}")
        if not port.isdigit():
            raise ValueError(f"expected [HOST:]PORT such as 8080 or 0.0.0.0:8080, got {address!r}")
        return cls(host=host, port=int(port), **options)

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name: it may resolve to any interface
