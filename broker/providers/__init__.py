"""Verification of ID tokens from public identity providers, for the Logins of the
unsigned Cognito calls.

- :mod:`broker.providers.jwks`: a JWKS fetched within a total deadline and cached per
  process (shared with the backend door's ``jwt`` translator), and ``JwksCaches``, at most
  256 of them per process.
- :mod:`broker.providers.discovery`: an issuer's ``jwks_uri`` from its discovery document.
- :mod:`broker.providers.catalog`: which provider a Logins key names for a pool.
- :mod:`broker.providers.idtoken`: the checks of one ID token.
- :mod:`broker.providers.verifier`: ``LoginVerifier.verify(pool, provider, token, now)``,
  built once per process by ``build_login_verifier(settings)``.
"""
