"""The public-provider token verifier (``broker.providers``, contract section 9) in-process,
against a test issuer on loopback (``support.issuer``): the checks of an ID token one by
one, the user pool path, which provider a Logins key names, the JWKS cache's refetch rule,
and the settings' refusals. End to end through boto3: tests/test_provider_logins.py."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from support.issuer import TestIssuer

from broker.errors import (
    ExternalServiceException,
    InvalidIdentityPoolConfigurationException,
    NotAuthorizedException,
)
from broker.identity.models import IdentityPool, PoolConfig
from broker.providers.verifier import LoginVerifier
from config.errors import ConfigError
from config.providers import ProviderSettings

ACCOUNT = "000000000000"
GOOGLE = "accounts.google.com"
APP = "the-app"
USER_POOL_ID = "us-east-1_Verifier1"
USER_POOL = f"cognito-idp.us-east-1.amazonaws.com/{USER_POOL_ID}"
USER_POOL_ISSUER = f"https://{USER_POOL}"


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer().running() as running:
        yield running


def pool_with(**config: Any) -> IdentityPool:
    return IdentityPool(
        id="us-east-1:00000000-0000-4000-8000-000000000000",
        config=PoolConfig(name="p", allow_unauthenticated=False, **config),
        created=0.0,
    )


def verifier_for(issuer: TestIssuer, min_refetch: str = "10", **extra: Any) -> LoginVerifier:
    providers = {
        GOOGLE: {"issuer": issuer.url, "jwks_uri": issuer.jwks_uri, "client_ids": [APP]},
        issuer.name: {"issuer": issuer.url, "client_ids": [APP]},  # keys from discovery
        **extra,
    }
    settings = ProviderSettings.from_env(
        {
            "BROKER_OIDC_PROVIDERS": json.dumps(providers),
            "BROKER_COGNITO_IDP_ENDPOINT": issuer.url,
            "BROKER_PROVIDER_JWKS_TIMEOUT": "1",
            "BROKER_PROVIDER_JWKS_MIN_REFETCH": min_refetch,
        }
    )
    return LoginVerifier(settings, ACCOUNT)


GOOGLE_POOL = pool_with(supported_login_providers={GOOGLE: APP})


def reason(verifier: LoginVerifier, pool: IdentityPool, provider: str, token: str) -> str:
    with pytest.raises(NotAuthorizedException) as refused:
        verifier.verify(pool, provider, token, time.time())
    return str(refused.value)


def test_a_good_token_gives_its_sub_and_the_audience_may_be_a_list(issuer: TestIssuer) -> None:
    verifier = verifier_for(issuer)
    now = time.time()
    assert verifier.verify(GOOGLE_POOL, GOOGLE, issuer.mint("s-1", APP), now)["sub"] == "s-1"
    listed = issuer.mint("s-2", ["other", APP])
    assert verifier.verify(GOOGLE_POOL, GOOGLE, listed, now)["sub"] == "s-2"
    assert "another audience" in reason(verifier, GOOGLE_POOL, GOOGLE, issuer.mint("s", ["x"]))


def test_expiry_has_five_minutes_of_leeway_and_no_more(issuer: TestIssuer) -> None:
    verifier = verifier_for(issuer)
    token = issuer.mint("s-exp", APP, lifetime=600)
    issued = time.time()
    assert verifier.verify(GOOGLE_POOL, GOOGLE, token, issued + 600 + 200)["sub"] == "s-exp"
    with pytest.raises(NotAuthorizedException, match="expired"):
        verifier.verify(GOOGLE_POOL, GOOGLE, token, issued + 600 + 400)
    future = issuer.mint("s-iat", APP, issued_at=issued + 1000)
    with pytest.raises(NotAuthorizedException, match="Invalid login token"):
        verifier.verify(GOOGLE_POOL, GOOGLE, future, issued)
    soon = issuer.mint("s-nbf", APP, nbf=int(issued) + 200)
    assert verifier.verify(GOOGLE_POOL, GOOGLE, soon, issued)["sub"] == "s-nbf"  # within leeway


@pytest.mark.parametrize(
    ("label", "why"),
    [("no exp", "lacks a required claim"), ("no sub", "lacks a required claim")],
)
def test_required_claims(issuer: TestIssuer, label: str, why: str) -> None:
    drop = {"no exp": ("exp",), "no sub": ("sub",)}[label]
    token = issuer.mint("s", APP, drop=drop)
    assert why in reason(verifier_for(issuer), GOOGLE_POOL, GOOGLE, token)


def test_discovery_gives_the_keys_and_a_lying_discovery_is_an_outage(issuer: TestIssuer) -> None:
    pool = pool_with(
        open_id_connect_provider_arns=(f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer.name}",)
    )
    verifier = verifier_for(issuer)
    assert verifier.verify(pool, issuer.name, issuer.mint("d-1", APP), time.time())["sub"] == "d-1"
    liar = "127.0.0.1:1/liar"  # discovery served by the issuer names the issuer, not this
    lying = verifier_for(issuer, **{liar: {"issuer": f"{issuer.url}/liar", "client_ids": [APP]}})
    liar_pool = pool_with(
        open_id_connect_provider_arns=(f"arn:aws:iam::{ACCOUNT}:oidc-provider/{liar}",)
    )
    with pytest.raises(ExternalServiceException, match=liar):
        lying.verify(
            liar_pool, liar, issuer.mint("d", APP, issuer=f"{issuer.url}/liar"), time.time()
        )


def test_an_unknown_kid_fetches_again_at_most_once_per_interval(issuer: TestIssuer) -> None:
    verifier = verifier_for(issuer, min_refetch="1")
    verifier.verify(GOOGLE_POOL, GOOGLE, issuer.mint("k", APP), time.time())
    time.sleep(1.1)  # past the interval since that fetch
    before = issuer.requests["/jwks.json"]
    for kid in ("forged-1", "forged-2", "forged-3"):
        forged = issuer.mint("k", APP, header={"kid": kid})
        assert "key the provider does not publish" in reason(verifier, GOOGLE_POOL, GOOGLE, forged)
    assert issuer.requests["/jwks.json"] - before == 1


def test_which_provider_a_logins_key_names(issuer: TestIssuer) -> None:
    verifier = verifier_for(issuer)
    pool = pool_with(
        supported_login_providers={"graph.facebook.com": "fb", GOOGLE: APP},
        saml_provider_arns=("arn:aws:iam::000000000000:saml-provider/corp",),
        open_id_connect_provider_arns=(
            "arn:aws:iam::000000000000:oidc-provider/not.configured.example",
            "arn:aws:iam::123456789012:oidc-provider/" + issuer.name,
        ),
    )
    assert reason(verifier, pool, "graph.facebook.com", "t") == (
        "Logins for graph.facebook.com cannot be verified by this broker."
    )
    saml = "arn:aws:iam::000000000000:saml-provider/corp"
    assert "cannot be verified by this broker" in reason(verifier, pool, saml, "t")
    with pytest.raises(InvalidIdentityPoolConfigurationException, match="not configured"):
        verifier.verify(pool, "not.configured.example", "t", time.time())
    other_account = reason(verifier, pool, issuer.name, issuer.mint("x", APP))
    assert other_account == "Token is not from a supported provider of this identity pool."
    assert "supported provider" in reason(verifier, pool, "www.example.com", "t")


def test_a_user_pool_token_must_be_an_id_token_of_a_listed_client(issuer: TestIssuer) -> None:
    served = issuer.serve(f"/{USER_POOL_ID}/.well-known/jwks.json", issuer.jwks)
    verifier = verifier_for(issuer)
    pool = pool_with(
        cognito_identity_providers=(
            {"ProviderName": USER_POOL, "ClientId": "client-a"},
            {"ProviderName": USER_POOL, "ClientId": "client-b"},
        )
    )
    now = time.time()
    for client in ("client-a", "client-b"):
        good = issuer.mint("u-1", client, issuer=USER_POOL_ISSUER, token_use="id")
        assert verifier.verify(pool, USER_POOL, good, now)["sub"] == "u-1"
    access = issuer.mint("u-1", "client-a", issuer=USER_POOL_ISSUER, token_use="access")
    assert "token_use" in reason(verifier, pool, USER_POOL, access)
    wrong_client = issuer.mint("u-1", "client-c", issuer=USER_POOL_ISSUER, token_use="id")
    assert "another audience" in reason(verifier, pool, USER_POOL, wrong_client)
    not_aws = issuer.mint("u-1", "client-a", token_use="id")  # the issuer's own URL
    assert "another issuer" in reason(verifier, pool, USER_POOL, not_aws)
    assert issuer.requests[served] >= 1


def test_logs_name_no_token(issuer: TestIssuer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    verifier = verifier_for(issuer)
    tokens = [issuer.mint("log", APP), issuer.mint("log", APP, header={"kid": "nope"})]
    for token in tokens:
        try:
            verifier.verify(GOOGLE_POOL, GOOGLE, token, time.time())
        except NotAuthorizedException as exc:
            assert token not in str(exc)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert not any(t.split(".")[2][:16] in text for t in tokens)


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"BROKER_OIDC_PROVIDERS": "{not json"}, "not JSON"),
        ({"BROKER_OIDC_PROVIDERS": '["a"]'}, "JSON object"),
        ({"BROKER_OIDC_PROVIDERS": '{"login.example.com": {}}'}, "client_ids"),
        (
            {
                "BROKER_OIDC_PROVIDERS": '{"a.example": {"client_ids": ["c"], "issuer": "http://a.example"}}'
            },
            "https",
        ),
        (
            {"BROKER_OIDC_PROVIDERS": '{"a.example": {"client_ids": ["c"], "x": 1}}'},
            "unknown member",
        ),
        ({"BROKER_COGNITO_IDP_ENDPOINT": "http://idp.example.com"}, "BROKER_COGNITO_IDP_ENDPOINT"),
        ({"BROKER_PROVIDER_JWKS_TIMEOUT": "soon"}, "BROKER_PROVIDER_JWKS_TIMEOUT"),
    ],
)
def test_bad_settings_are_refused_with_one_line(environ: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as refused:
        ProviderSettings.from_env(environ)
    assert names in str(refused.value) and "\n" not in str(refused.value)


def test_http_is_accepted_on_loopback_only() -> None:
    fine = ProviderSettings.from_env(
        {
            "BROKER_OIDC_PROVIDERS": json.dumps(
                {
                    "127.0.0.1:9000/realm": {
                        "issuer": "http://127.0.0.1:9000/realm",
                        "client_ids": ["c"],
                    }
                }
            ),
            "BROKER_COGNITO_IDP_ENDPOINT": "http://localhost:5000",
        }
    )
    assert fine.oidc["127.0.0.1:9000/realm"].issuer == "http://127.0.0.1:9000/realm"
    assert fine.oidc["127.0.0.1:9000/realm"].client_ids == ("c",)
