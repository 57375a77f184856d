"""The identity rules of Cognito Identity: pools, identities and developer logins.

Nothing in this package imports Flask or Redis: front doors call these functions with clean,
typed values, and the functions reach storage only through the ``IdentityStore`` protocol.
"""
