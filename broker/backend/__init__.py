"""The backend front door: a sidecar's one JSON endpoint, ``POST /v1/token``.

The backend beside the broker sends the session it already has (a bearer JWT, its Flask
session cookie, or an API key and the user id) and gets the developer identity and OpenID
token that GetOpenIdTokenForDeveloperIdentity would give, in a ``{"success", "data" |
"error"}`` envelope, with neither an AWS SDK nor SigV4. ``door`` parses and renders,
``translators`` verify sessions, ``tokens`` composes the identity rules and signing,
``cache`` coalesces and reuses tokens, ``openapi`` documents it all.
"""
