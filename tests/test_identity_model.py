"""A randomized stateful test of the identity lifecycle (contract sections 5, 7 and 9).

Hypothesis runs long sequences of create, link, merge, unlink, delete, lookup and
unauthenticated GetOpenIdToken, and of public-provider logins (GetId with a Google login,
a developer login with a Google login beside it, which links or merges, UnlinkIdentity),
against the LIVE service (the session's gunicorn, three workers, whose accounts.google.com
is a test issuer) and against a small model kept here. An identity whose last login is
unlinked is disabled, as the source of a merge is. After every step the pool's listing must
equal the model and the consistency checker must find nothing in the pool.
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
from support.issuer import SESSION_GOOGLE_APP as GOOGLE_APP
from support.issuer import TestIssuer
from support.processes import BrokerServer, RedisServer

from broker.store.checker import check_store

USER_IDS = [f"user-{n}" for n in range(5)]
USERS = st.sampled_from(USER_IDS)
SUBS = st.sampled_from([f"google-{n}" for n in range(4)])
MAX_LINKED_LOGINS = 20
GOOGLE = "accounts.google.com"
Login = tuple[str, str]  # ("dev", user id) or ("google", sub)


def dev(user: str) -> Login:
    return ("dev", user)


def google(sub: str) -> Login:
    return ("google", sub)


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
    google: ClassVar[TestIssuer]

    def __init__(self) -> None:
        super().__init__()
        self.pool_id = ""
        self.users: dict[str, set[Login]] = {}  # live identity id -> its logins
        self.order: list[str] = []  # live identity ids in creation order
        self.disabled: set[str] = set()
        self.owner: dict[Login, str] = {}  # login -> identity id
        self.ever: list[str] = []  # every identity id seen, deleted ones too

    @initialize(users=st.lists(USERS, max_size=4, unique=True))
    def create_pool(self, users: list[str]) -> None:
        self.pool_id = self.cognito.create_identity_pool(
            IdentityPoolName=f"model_{uuid.uuid4().hex[:8]}",
            AllowUnauthenticatedIdentities=True,
            DeveloperProviderName=DEVELOPER_PROVIDER,
            SupportedLoginProviders={GOOGLE: GOOGLE_APP},
        )["IdentityPoolId"]
        for user in users:
            self.get_token(user)

    def teardown(self) -> None:
        if self.pool_id:
            self.cognito.delete_identity_pool(IdentityPoolId=self.pool_id)

    # --- the model's helpers ---------------------------------------------------------------
    def _new_identity(self, identity: str, logins: set[Login]) -> None:
        assert identity not in self.ever
        self.ever.append(identity)
        self.order.append(identity)
        self.users[identity] = set(logins)
        for login in logins:
            self.owner[login] = identity

    def _dev_users(self, identity: str) -> list[str]:
        return sorted(user for kind, user in self.users[identity] if kind == "dev")

    def _move(self, out_of: str, into: str) -> None:
        """A merge: every login of ``out_of`` moves to ``into``, which it leaves disabled."""
        for login in self.users[out_of]:
            self.owner[login] = into
        self.users[into] |= self.users[out_of]
        self.users[out_of] = set()
        self.disabled.add(out_of)

    def _google_twice(self, logins: set[Login]) -> bool:
        return sum(1 for kind, _ in logins if kind == "google") > 1

    def _some_identity(self, data: st.DataObject) -> str:
        """Half the time a live identity, else any ever seen (deleted ones too) or a ghost."""
        ghost = f"{REGION}:{uuid.uuid4()}"
        anything = st.sampled_from([*self.ever, ghost])
        live = st.sampled_from(self.order) if self.order else anything
        return data.draw(st.one_of(live, anything), label="identity")

    def _some_user(self, data: st.DataObject, label: str) -> str:
        """Half the time a developer user linked now, else any user."""
        now = sorted(user for kind, user in self.owner if kind == "dev")
        linked = st.sampled_from(now) if now else USERS
        return data.draw(st.one_of(linked, USERS), label=label)

    def _token(
        self, user: str, logins: dict[str, str] | None = None, **extra: Any
    ) -> tuple[str, dict[str, Any]]:
        return outcome(
            self.cognito.get_open_id_token_for_developer_identity,
            IdentityPoolId=self.pool_id,
            Logins=logins or {DEVELOPER_PROVIDER: user},
            **extra,
        )

    # --- rules -----------------------------------------------------------------------------
    @rule(user=USERS)
    def get_token(self, user: str) -> None:
        code, response = self._token(user)
        assert code == "ok"
        identity = response["IdentityId"]
        assert subject_of(response["Token"]) == identity
        if dev(user) in self.owner:
            assert identity == self.owner[dev(user)]
        else:
            self._new_identity(identity, {dev(user)})

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
        elif self.owner.get(dev(user)) == identity:
            assert (code, response["IdentityId"]) == ("ok", identity)
        elif dev(user) in self.owner:
            assert code == "DeveloperUserAlreadyRegisteredException"
        elif self.users[identity]:
            assert code == "NotAuthorizedException"
        else:
            assert (code, response["IdentityId"]) == ("ok", identity)
            self.users[identity].add(dev(user))
            self.owner[dev(user)] = identity

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
        if dev(destination) not in self.owner or dev(source) not in self.owner:
            assert code == "ResourceNotFoundException"
            return
        into, out_of = self.owner[dev(destination)], self.owner[dev(source)]
        if into == out_of:
            assert (code, response["IdentityId"]) == ("ok", into)
            return
        together = self.users[into] | self.users[out_of]
        if len(together) > MAX_LINKED_LOGINS or self._google_twice(together):
            assert code == "ResourceConflictException"  # two Google users would meet
            return
        assert (code, response["IdentityId"]) == ("ok", into)
        self._move(out_of, into)

    @precondition(lambda self: self.ever)
    @rule(data=st.data())
    def unlink(self, data: st.DataObject) -> None:
        user = self._some_user(data, "user")
        if dev(user) in self.owner and data.draw(st.booleans(), label="its own identity"):
            identity = self.owner[dev(user)]
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
        elif self.owner.get(dev(user)) != identity:
            assert code == "ResourceConflictException"
        else:
            assert code == "ok"
            self.users[identity].discard(dev(user))
            del self.owner[dev(user)]
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
            for login in self.users.pop(identity):
                del self.owner[login]
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
        if dev(user) not in self.owner:
            assert code == "ResourceNotFoundException"
            return
        identity = self.owner[dev(user)]
        assert (code, response["IdentityId"]) == ("ok", identity)
        assert response["DeveloperUserIdentifierList"] == self._dev_users(identity)

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
        assert listed == self._dev_users(identity)

    # --- public-provider logins (contract section 9) -----------------------------------------
    def _google_token(self, sub: str) -> str:
        return self.google.mint(sub, GOOGLE_APP)

    @rule(sub=SUBS)
    def google_get_id(self, sub: str) -> None:
        """GetId with a Google login: its identity, or a new authenticated one."""
        code, response = outcome(
            self.public.get_id,
            IdentityPoolId=self.pool_id,
            Logins={GOOGLE: self._google_token(sub)},
        )
        assert code == "ok"
        identity = response["IdentityId"]
        if google(sub) in self.owner:
            assert identity == self.owner[google(sub)]
        else:
            self._new_identity(identity, {google(sub)})

    @rule(user=USERS, sub=SUBS)
    def developer_with_google(self, user: str, sub: str) -> None:
        """A developer login with a Google login beside it: one identity holds both, the
        developer login's if it has one, else the Google login's, else a new one; two
        identities are merged into the developer login's."""
        code, response = self._token(
            user, {DEVELOPER_PROVIDER: user, GOOGLE: self._google_token(sub)}
        )
        by_dev, by_google = self.owner.get(dev(user)), self.owner.get(google(sub))
        survivor = by_dev or by_google
        if survivor is None:
            assert code == "ok"
            self._new_identity(response["IdentityId"], {dev(user), google(sub)})
            return
        together = set(self.users[survivor]) | {dev(user), google(sub)}
        merged = by_google if by_dev and by_google and by_google != by_dev else None
        if merged is not None:
            together |= self.users[merged]
        if len(together) > MAX_LINKED_LOGINS or self._google_twice(together):
            assert code == "ResourceConflictException"
            return
        assert (code, response["IdentityId"]) == ("ok", survivor)
        assert subject_of(response["Token"]) == survivor
        if merged is not None:
            self._move(merged, survivor)
        for login in (dev(user), google(sub)):
            self.users[survivor].add(login)
            self.owner[login] = survivor

    @precondition(lambda self: any(kind == "google" for kind, _ in self.owner))
    @rule(data=st.data())
    def unlink_google(self, data: st.DataObject) -> None:
        """UnlinkIdentity of the Google login, proven by its own token."""
        sub = data.draw(
            st.sampled_from(sorted(s for kind, s in self.owner if kind == "google")), label="sub"
        )
        identity = self.owner[google(sub)]
        code, _ = outcome(
            self.public.unlink_identity,
            IdentityId=identity,
            Logins={GOOGLE: self._google_token(sub)},
            LoginsToRemove=[GOOGLE],
        )
        assert code == "ok"
        self.users[identity].discard(google(sub))
        del self.owner[google(sub)]
        if not self.users[identity]:
            self.disabled.add(identity)

    # --- after every step ------------------------------------------------------------------
    @invariant()
    def service_agrees_with_the_model(self) -> None:
        if not self.pool_id:
            return
        listed = list_all(self.cognito, self.pool_id, page_size=4)
        assert [i["IdentityId"] for i in listed] == self.order
        names = {"dev": DEVELOPER_PROVIDER, "google": GOOGLE}
        for item in listed:
            providers = sorted({names[kind] for kind, _ in self.users[item["IdentityId"]]})
            assert item.get("Logins") == (providers or None)
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
    cognito: Any,
    broker_server: BrokerServer,
    redis_server: RedisServer,
    google_issuer: TestIssuer,
) -> None:
    public = unsigned_client(broker_server.url)
    with redis_server.client() as client:
        IdentityMachine.cognito = cognito
        IdentityMachine.public = public
        IdentityMachine.redis = client
        IdentityMachine.google = google_issuer
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
