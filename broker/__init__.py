"""Identity Broker: Cognito Identity developer-authenticated identities, self-hosted."""
