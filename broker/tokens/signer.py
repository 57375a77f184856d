"""RS512 JWS compact signing with joserfc, in AWS's own header shape (contract §6)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from joserfc import jwt

from broker.tokens.keys import ALGORITHM, KeyRing


class TokenSigner:
    def __init__(self, keyring: KeyRing) -> None:
        self._keyring = keyring

    def sign(self, claims: Mapping[str, Any]) -> str:
        key = self._keyring.current()
        header = {"kid": key.kid, "typ": "JWS", "alg": ALGORITHM}
        # default_type=None: joserfc would otherwise put its own "typ" first, and the
        # header must be exactly kid, typ, alg in that order (AWS's shape).
        return jwt.encode(header, dict(claims), key.key, algorithms=[ALGORITHM], default_type=None)
