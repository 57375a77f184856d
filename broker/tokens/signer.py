"""RS512 JWS compact signing with joserfc, in AWS's own header shape (contract §6).

The token is what ``joserfc.jwt.encode(header, claims, key, default_type=None)`` makes,
byte for byte (``tests/test_developer_tokens.py`` holds the two side by side), built from
joserfc's own parts: the header segment is encoded once per signing key rather than for
every token, and joserfc's RS512 algorithm signs. PKCS#1 v1.5 is deterministic, so the
same claims and key always give the same token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from joserfc.jws import JWSRegistry
from joserfc.util import json_b64encode, urlsafe_b64encode

from broker.tokens.keys import ALGORITHM, KeyRing, SigningKey

#: ``json.dumps(v, separators=(",", ":"), ensure_ascii=False)``, made once: ``json.dumps``
#: with options builds a new encoder on every call, which costs more than a claims set.
_COMPACT: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


class TokenSigner:
    def __init__(self, keyring: KeyRing) -> None:
        self._keyring = keyring
        self._algorithm = JWSRegistry(algorithms=[ALGORITHM]).get_alg(ALGORITHM)
        self._header_segments: dict[str, bytes] = {}  # kid -> its encoded header

    def sign(self, claims: Mapping[str, Any]) -> str:
        key = self._keyring.current()
        payload = _COMPACT.encode(dict(claims))
        signing_input = self._header_segment(key) + b"." + urlsafe_b64encode(payload.encode())
        signature = urlsafe_b64encode(self._algorithm.sign(signing_input, key.key))
        return (signing_input + b"." + signature).decode("ascii")

    def _header_segment(self, key: SigningKey) -> bytes:
        segment = self._header_segments.get(key.kid)
        if segment is None:
            # Exactly kid, typ, alg in that order (AWS's shape).
            segment = json_b64encode({"kid": key.kid, "typ": "JWS", "alg": ALGORITHM})
            if len(self._header_segments) > 16:  # keys rotate rarely; never grow unbounded
                self._header_segments.clear()
            self._header_segments[key.kid] = segment
        return segment
