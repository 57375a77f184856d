"""OpenID tokens: signing keys, claims and RS512 signatures (contract section 6)."""
