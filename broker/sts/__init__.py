"""AWS STS for GetCredentialsForIdentity (contract section 10, docs/credentials.md).

The broker is no STS: it signs its own OpenID token for the identity and STS
``AssumeRoleWithWebIdentity`` exchanges it for the chosen role's credentials, trusting the
broker's issuer through an IAM OpenID Connect provider. ``client`` makes that one unsigned
call within a total deadline; ``errors`` turns STS's answers into the broker's errors. No
Flask and no Redis here: the credentials pass through, never stored or logged.
"""
