"""A randomized stateful test of the developer identity lifecycle (contract sections 5 and 7).

Hypothesis runs long sequences of create, link, merge, unlink, delete, lookup and
unauthenticated GetOpenIdToken against the LIVE service (the session's gunicorn, three
workers) and against a small model kept here. An identity whose last login is unlinked
is disabled, as the source of a merge is. After every step the pool's listing must equal
the model and the consistency checker must find nothing in the pool.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any, ClassVar

from botocore.exceptions import ClientError
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from support.identities import DEVELOPER_PROVIDER, REGION, list_all, unsigned_client
from support.processes import BrokerServer, RedisServer

from broker.store.checker import check_store

USER_IDS = [f"user-{n}" for n in range(5)]
USERS = st.sampled_from(USER_IDS)
MAX_LINKED_LOGINS = 20


def subject_of(token: str) -> str:
    """The token's sub, read without verifying (test_developer_tokens verifies tokens)."""
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


def outcome(call: Any, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    """("ok", response) or (error code, {}); each is a Hypothesis event, so that
    ``--hypothesis-show-statistics`` shows which answers the runs reached."""
    try:
        code, response = "ok", call(**kwargs)
    except ClientError as exc:
        code, response = exc.response["Error"]["Code"], {}
    event(f"{call.__name__} -> {code}")
    return code, response


class IdentityMachine(RuleBasedStateMachine):
    cognito: ClassVar[Any]
    public: ClassVar[Any]
    redis: ClassVar[Any]

    def __init__(self) -> None:
        super().__init__()
        self.pool_id = ""
        self.users: dict[str, set[str]] = {}  # live identity id -> its developer user ids
        self.order: list[str] = []  # live identity ids in creation order
        self.disabled: set[str] = set()
        self.owner: dict[str, str] = {}  # user id -> identity id
        self.ever: list[str] = []  # every identity id seen, deleted ones too

    @initialize(users=st.lists(USERS, max_size=4, unique=True))
    def create_pool(self, users: list[str]) -> None:
        self.pool_id = self.cognito.create_identity_pool(
            IdentityPoolName=f"model_{uuid.uuid4().hex[:8]}",
            AllowUnauthenticatedIdentities=True,
            DeveloperProviderName=DEVELOPER_PROVIDER,
        )["IdentityPoolId"]
        for user in users:
            self.get_token(user)

    def teardown(self) -> None:
        if self.pool_id:
            self.cognito.delete_identity_pool(IdentityPoolId=self.pool_id)

    # --- the model's helpers ---------------------------------------------------------------
    def _new_identity(self, identity: str, users: set[str]) -> None:
        assert identity not in self.ever
        self.ever.append(identity)
        self.order.append(identity)
        self.users[identity] = set(users)
        for user in users:
            self.owner[user] = identity

    def _some_identity(self, data: st.DataObject) -> str:
        """Half the time a live identity, else any ever seen (deleted ones too) or a ghost."""
        ghost = f"{REGION}:{uuid.uuid4()}"
        anything = st.sampled_from([*self.ever, ghost])
        live = st.sampled_from(self.order) if self.order else anything
        return data.draw(st.one_of(live, anything), label="identity")

    def _some_user(self, data: st.DataObject, label: str) -> str:
        """Half the time a user linked now, else any user."""
        linked = st.sampled_from(sorted(self.owner)) if self.owner else USERS
        return data.draw(st.one_of(linked, USERS), label=label)

    def _token(self, user: str, **extra: Any) -> tuple[str, dict[str, Any]]:
        return outcome(
            self.cognito.get_open_id_token_for_developer_identity,
            IdentityPoolId=self.pool_id,
            Logins={DEVELOPER_PROVIDER: user},
            **extra,
        )

    # --- rules -----------------------------------------------------------------------------
    @rule(user=USERS)
    def get_token(self, user: str) -> None:
        code, response = self._token(user)
        assert code == "ok"
        identity = response["IdentityId"]
        assert subject_of(response["Token"]) == identity
        if user in self.owner:
            assert identity == self.owner[user]
        else:
            self._new_identity(identity, {user})

    @rule()
    def get_unauthenticated_id(self) -> None:
        identity = self.public.get_id(IdentityPoolId=self.pool_id)["IdentityId"]
        self._new_identity(identity, set())

    @precondition(lambda self: self.ever)
    @rule(user=USERS, data=st.data())
    def link(self, user: str, data: st.DataObject) -> None:
        identity = self._some_identity(data)
        code, response = self._token(user, IdentityId=identity)
        if identity not in self.users:
            assert code == "ResourceNotFoundException"
        elif identity in self.disabled:
            assert code == "NotAuthorizedException"
        elif self.owner.get(user) == identity:
            assert (code, response["IdentityId"]) == ("ok", identity)
        elif user in self.owner:
            assert code == "DeveloperUserAlreadyRegisteredException"
        elif self.users[identity]:
            assert code == "NotAuthorizedException"
        else:
            assert (code, response["IdentityId"]) == ("ok", identity)
            self.users[identity].add(user)
            self.owner[user] = identity

    @rule(data=st.data())
    def merge(self, data: st.DataObject) -> None:
        source = self._some_user(data, "source")
        destination = self._some_user(data, "destination")
        code, response = outcome(
            self.cognito.merge_developer_identities,
            SourceUserIdentifier=source,
            DestinationUserIdentifier=destination,
            DeveloperProviderName=DEVELOPER_PROVIDER,
            IdentityPoolId=self.pool_id,
        )
        if destination not in self.owner or source not in self.owner:
            assert code == "ResourceNotFoundException"
            return
        into, out_of = self.owner[destination], self.owner[source]
        if into == out_of:
            assert (code, response["IdentityId"]) == ("ok", into)
            return
        if len(self.users[into]) + len(self.users[out_of]) > MAX_LINKED_LOGINS:
            assert code == "ResourceConflictException"  # pragma: no cover - five users
            return
        assert (code, response["IdentityId"]) == ("ok", into)
        for user in self.users[out_of]:
            self.owner[user] = into
        self.users[into] |= self.users[out_of]
        self.users[out_of] = set()
        self.disabled.add(out_of)

    @precondition(lambda self: self.ever)
    @rule(data=st.data())
    def unlink(self, data: st.DataObject) -> None:
        user = self._some_user(data, "user")
        if user in self.owner and data.draw(st.booleans(), label="its own identity"):
            identity = self.owner[user]
        else:
            identity = self._some_identity(data)
        code, _ = outcome(
            self.cognito.unlink_developer_identity,
            IdentityId=identity,
            IdentityPoolId=self.pool_id,
            DeveloperProviderName=DEVELOPER_PROVIDER,
            DeveloperUserIdentifier=user,
        )
        if identity not in self.users:
            assert code == "ResourceNotFoundException"
        elif identity in self.disabled:
            assert code == "NotAuthorizedException"
        elif self.owner.get(user) != identity:
            assert code == "ResourceConflictException"
        else:
            assert code == "ok"
            self.users[identity].discard(user)
            del self.owner[user]
            if not self.users[identity]:  # no login left: inaccessible (contract section 7)
                self.disabled.add(identity)

    @precondition(lambda self: self.ever)
    @rule(data=st.data())
    def unauthenticated_token(self, data: st.DataObject) -> None:
        """GetOpenIdToken with the IdentityId alone: only an identity that never had a
        login (the pool allows unauthenticated identities) gets a token."""
        identity = self._some_identity(data)
        code, response = outcome(self.public.get_open_id_token, IdentityId=identity)
        if identity not in self.users:
            assert code == "ResourceNotFoundException"
        elif identity in self.disabled or self.users[identity]:
            assert code == "NotAuthorizedException"  # forbidden, or Logins don't match
        else:
            assert code == "ok"
            assert subject_of(response["Token"]) == identity

    @precondition(lambda self: self.ever)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        doomed = data.draw(
            st.lists(
                st.sampled_from([*self.ever, f"{REGION}:{uuid.uuid4()}"]), min_size=1, max_size=3
            ),
            label="doomed",
        )
        response = self.cognito.delete_identities(IdentityIdsToDelete=doomed)
        assert response["UnprocessedIdentityIds"] == []
        for identity in set(doomed) & set(self.users):
            for user in self.users.pop(identity):
                del self.owner[user]
            self.order.remove(identity)
            self.disabled.discard(identity)

    @rule(data=st.data())
    def lookup_user(self, data: st.DataObject) -> None:
        user = self._some_user(data, "user")
        code, response = outcome(
            self.cognito.lookup_developer_identity,
            IdentityPoolId=self.pool_id,
            DeveloperUserIdentifier=user,
        )
        if user not in self.owner:
            assert code == "ResourceNotFoundException"
            return
        identity = self.owner[user]
        assert (code, response["IdentityId"]) == ("ok", identity)
        assert response["DeveloperUserIdentifierList"] == sorted(self.users[identity])

    @precondition(lambda self: self.ever)
    @rule(data=st.data())
    def lookup_identity(self, data: st.DataObject) -> None:
        identity = self._some_identity(data)
        code, response = outcome(
            self.cognito.lookup_developer_identity,
            IdentityPoolId=self.pool_id,
            IdentityId=identity,
            MaxResults=2,
        )
        if identity not in self.users:
            assert code == "ResourceNotFoundException"
            return
        listed = list(response["DeveloperUserIdentifierList"])
        while "NextToken" in response:
            response = self.cognito.lookup_developer_identity(
                IdentityPoolId=self.pool_id,
                IdentityId=identity,
                MaxResults=2,
                NextToken=response["NextToken"],
            )
            listed.extend(response["DeveloperUserIdentifierList"])
        assert listed == sorted(self.users[identity])

    # --- after every step ------------------------------------------------------------------
    @invariant()
    def service_agrees_with_the_model(self) -> None:
        if not self.pool_id:
            return
        listed = list_all(self.cognito, self.pool_id, page_size=4)
        assert [i["IdentityId"] for i in listed] == self.order
        for item in listed:
            has_logins = bool(self.users[item["IdentityId"]])
            assert item.get("Logins") == ([DEVELOPER_PROVIDER] if has_logins else None)
        enabled = list_all(self.cognito, self.pool_id, HideDisabled=True)
        assert [i["IdentityId"] for i in enabled] == [
            i for i in self.order if i not in self.disabled
        ]

    @invariant()
    def checker_finds_nothing(self) -> None:
        if not self.pool_id:
            return
        report = check_store(self.redis, [self.pool_id])
        assert report.clean, "\n".join(str(p) for p in report.problems)


def test_the_lifecycle_agrees_with_a_model(
    cognito: Any, broker_server: BrokerServer, redis_server: RedisServer
) -> None:
    public = unsigned_client(broker_server.url)
    with redis_server.client() as client:
        IdentityMachine.cognito = cognito
        IdentityMachine.public = public
        IdentityMachine.redis = client
        try:
            run_state_machine_as_test(
                IdentityMachine,
                settings=settings(
                    max_examples=30,
                    stateful_step_count=60,
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
                ),
            )
        finally:
            public.close()
