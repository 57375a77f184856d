"""Verification of ID tokens from public identity providers, for the Logins of the
unsigned Cognito calls.

- :mod:`broker.providers.jwks`: a JWKS fetched within a total deadline and cached per
  process (shared with the backend door's ``jwt`` translator).
"""
