"""A recording stand-in for AWS STS on loopback, for GetCredentialsForIdentity's tests.

It answers ``AssumeRoleWithWebIdentity`` in STS's query protocol (form-encoded request,
XML answer) and checks the web identity token as IAM checks one for an OpenID Connect
provider: with PyJWT against the issuer's published keys (``support.oidc.verify``), the
token's ``aud`` one of the provider's client ids. So a test sees what STS would: the role
asked for, the session name, and a token that verifies (or STS's InvalidIdentityToken). A
test can make it throttle, refuse, fail or hang; each answer holds a fresh secret key and
session token, so a test can look for them where they must not be (the broker's log).
"""

from __future__ import annotations

import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from xml.sax.saxutils import escape

import jwt

from support import oidc

NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"


@dataclass
class StsCall:
    params: dict[str, str]
    claims: dict[str, Any] | None  # the verified token's claims; None when it did not verify
    answer: str  # "credentials" or the error code answered


@dataclass
class Issued:
    access_key_id: str
    secret_key: str
    session_token: str
    expiration: datetime


@dataclass
class StsStandIn:
    """``issuer`` and ``audiences``: the OpenID Connect provider STS trusts (its URL and
    client id list; ``verify``). ``mode`` decides the next answers: ``ok``; ``throttle`` (400
    Throttling); ``throttle-once`` (then ok); an STS error code (``AccessDenied``, ...,
    answered 400, 403 for AccessDenied); ``500``; ``hang`` (no answer for ``hang_seconds``)."""

    issuer: str = ""
    audiences: set[str] = field(default_factory=set)
    mode: str = "ok"
    hang_seconds: float = 10.0
    #: False: read the token's claims without checking it (for a broker in-process, whose
    #: JWKS no server publishes); every other check is the same.
    verify: bool = True
    calls: list[StsCall] = field(default_factory=list)
    issued: list[Issued] = field(default_factory=list)  # every answer's, kept by reset()
    tokens: list[str] = field(default_factory=list)  # every token received, kept by reset()
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Self:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode()
                params = dict(urllib.parse.parse_qsl(body))
                status, xml = stand_in.answer(params)
                data = xml.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def reset(self, mode: str = "ok") -> None:
        with self._lock:
            self.mode = mode
            self.calls.clear()

    def assert_no_secret_in(self, log: str) -> None:
        """No secret key, session token or web identity token the stand-in ever gave or got
        is in ``log`` (a token's signature and claims are looked for in part: a log line
        would cut it)."""
        assert self.issued, "no credentials were issued"
        for issued in self.issued:
            assert issued.secret_key not in log
            assert issued.session_token not in log
        for token in self.tokens:
            parts = token.split(".")
            assert len(parts) == 3
            assert parts[2][:20] not in log and parts[1][:40] not in log

    def answer(self, params: dict[str, str]) -> tuple[int, str]:
        with self._lock:
            if "WebIdentityToken" in params:
                self.tokens.append(params["WebIdentityToken"])
            mode = self.mode
            if mode == "throttle-once":
                self.mode = "ok"
        if params.get("Action") != "AssumeRoleWithWebIdentity":
            return self._record(params, None, "InvalidAction", 400)
        if mode == "hang":
            time.sleep(self.hang_seconds)
        if mode in ("throttle", "throttle-once"):
            return self._record(params, None, "Throttling", 400, "Rate exceeded")
        if mode == "500":
            return self._record(params, None, "InternalFailure", 500, "internal failure")
        try:
            token = params.get("WebIdentityToken", "")
            if self.verify:
                _, claims = oidc.verify(self.issuer, token, sorted(self.audiences))
            else:
                claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            return self._record(params, None, "InvalidIdentityToken", 400, f"bad token: {exc}")
        if mode != "ok":
            status = 403 if mode == "AccessDenied" else 400
            message = "Not authorized to perform sts:AssumeRoleWithWebIdentity"
            return self._record(params, claims, mode, status, message)
        issued = Issued(
            access_key_id="ASIA" + secrets.token_hex(8).upper(),
            secret_key=secrets.token_urlsafe(30),
            session_token=secrets.token_urlsafe(60),
            expiration=datetime.now(UTC).replace(microsecond=0)
            + timedelta(seconds=int(params.get("DurationSeconds", "3600"))),
        )
        with self._lock:
            self.issued.append(issued)
            self.calls.append(StsCall(params, claims, "credentials"))
        return 200, _credentials_xml(params, claims, issued)

    def _record(
        self,
        params: dict[str, str],
        claims: dict[str, Any] | None,
        code: str,
        status: int,
        message: str = "",
    ) -> tuple[int, str]:
        with self._lock:
            self.calls.append(StsCall(params, claims, code))
        return status, (
            f'<ErrorResponse xmlns="{NAMESPACE}"><Error><Type>Sender</Type>'
            f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            f"<RequestId>{secrets.token_hex(8)}</RequestId></ErrorResponse>"
        )


def _credentials_xml(params: dict[str, str], claims: dict[str, Any], issued: Issued) -> str:
    role = params.get("RoleArn", "")
    session = params.get("RoleSessionName", "")
    expiration = issued.expiration.strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f'<AssumeRoleWithWebIdentityResponse xmlns="{NAMESPACE}">'
        "<AssumeRoleWithWebIdentityResult>"
        f"<SubjectFromWebIdentityToken>{escape(str(claims.get('sub')))}"
        "</SubjectFromWebIdentityToken>"
        f"<Audience>{escape(str(claims.get('aud')))}</Audience>"
        "<AssumedRoleUser>"
        f"<Arn>{escape(role.replace(':iam::', ':sts::'))}/{escape(session)}</Arn>"
        f"<AssumedRoleId>AROA{secrets.token_hex(8).upper()}:{escape(session)}</AssumedRoleId>"
        "</AssumedRoleUser>"
        "<Credentials>"
        f"<SessionToken>{issued.session_token}</SessionToken>"
        f"<SecretAccessKey>{issued.secret_key}</SecretAccessKey>"
        f"<Expiration>{expiration}</Expiration>"
        f"<AccessKeyId>{issued.access_key_id}</AccessKeyId>"
        "</Credentials>"
        f"<Provider>{escape(str(claims.get('iss')))}</Provider>"
        "</AssumeRoleWithWebIdentityResult>"
        f"<ResponseMetadata><RequestId>{secrets.token_hex(8)}</RequestId></ResponseMetadata>"
        "</AssumeRoleWithWebIdentityResponse>"
    )
