"""A test-only OpenID Connect issuer on 127.0.0.1: keys made with joserfc, its discovery
document and JWKS (or whatever a test puts at a path) served by a threaded http.server,
every GET counted by path. ``running()`` stops it when the test ends."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey


class Issuer:
    """Serves ``routes[path]``: a JSON-able document, or ``(status, headers, body bytes)``."""

    def __init__(self, path: str = "/realm") -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
        self.routes: dict[str, Any] = {}
        self.hits: Counter[str] = Counter()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                issuer.hits[self.path] += 1
                route = issuer.routes.get(self.path)
                if route is None:
                    status, headers, body = 404, {}, b"{}"
                elif isinstance(route, tuple):
                    status, headers, body = route
                else:
                    status, headers, body = 200, {}, json.dumps(route).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self.path = path
        self.publish(self.key)
        self.routes[f"{path}/.well-known/openid-configuration"] = {
            "issuer": self.issuer,
            "jwks_uri": f"{self.base}{path}/jwks.json",
        }

    @property
    def port(self) -> int:
        port: int = self._httpd.server_address[1]
        return port

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return self.base + self.path

    @property
    def name(self) -> str:
        """AWS's name of the provider: the issuer without its scheme (a port in it)."""
        return self.issuer.removeprefix("http://")

    def publish(self, *keys: RSAKey, path: str | None = None) -> None:
        self.routes[path or f"{self.path}/jwks.json"] = {
            "keys": [k.as_dict(private=False) | {"use": "sig"} for k in keys]
        }

    def mint(
        self,
        claims: Mapping[str, Any],
        *,
        key: RSAKey | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> str:
        signer = key or self.key
        protected = {"alg": "RS256", "kid": signer.kid, **(header or {})}
        return jwt.encode(protected, dict(claims), signer)

    @contextmanager
    def running(self) -> Iterator[Issuer]:
        self._thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
