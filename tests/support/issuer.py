"""A test-only OpenID Connect issuer on loopback: keys made by the test (joserfc), its
discovery document and JWKS served by a threaded http.server, ID tokens minted on demand.

It stands in for a public provider (``accounts.google.com`` through the broker's
``BROKER_OIDC_PROVIDERS`` override, or a provider of its own name), so that a test can sign
what no real provider would: expired tokens, other audiences, other algorithms. ``requests``
counts what it served, so a test can tell whether the broker fetched anything.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

#: The app id the session's broker accepts from its stand-in for accounts.google.com
#: (conftest's ``google_issuer``).
SESSION_GOOGLE_APP = "session-app.apps.googleusercontent.com"


class TestIssuer:
    """``url`` is the issuer (``http://127.0.0.1:<port>``); ``name`` the provider name AWS
    would use for it (the issuer without its scheme)."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self, kid: str = "test-key-1") -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig"})
        self.requests: Counter[str] = Counter()
        self.extra: dict[str, Callable[[], dict[str, Any]]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def jwks_uri(self) -> str:
        return f"{self.url}/jwks.json"

    def jwks(self) -> dict[str, Any]:
        return dict(KeySet([self.key]).as_dict(private=False))

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": self.jwks_uri,
            "id_token_signing_alg_values_supported": ["RS256"],
            "subject_types_supported": ["public"],
            "response_types_supported": ["id_token"],
        }

    def mint(
        self,
        sub: str,
        aud: str | list[str],
        *,
        issuer: str | None = None,
        lifetime: int = 600,
        issued_at: float | None = None,
        key: RSAKey | None = None,
        header: Mapping[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        now = int(time.time() if issued_at is None else issued_at)
        body: dict[str, Any] = {
            "iss": issuer or self.url,
            "sub": sub,
            "aud": aud,
            "iat": now,
            "exp": now + lifetime,
            **claims,
        }
        for name in drop:
            body.pop(name, None)
        signer = key or self.key
        head = {"alg": "RS256", "kid": signer.kid, **(header or {})}
        return jwt.encode(head, body, signer)

    def serve(self, path: str, document: Callable[[], dict[str, Any]]) -> str:
        """Answer ``path`` too, with what ``document()`` gives (a user pool's JWKS path)."""
        self.extra[path] = document
        return path

    @contextmanager
    def running(self) -> Iterator[TestIssuer]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                issuer.requests[self.path] += 1
                documents = {
                    "/.well-known/openid-configuration": issuer.discovery,
                    "/jwks.json": issuer.jwks,
                    **issuer.extra,
                }
                if self.path not in documents:
                    self.send_error(404)
                    return
                body = json.dumps(documents[self.path]()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        return Handler
