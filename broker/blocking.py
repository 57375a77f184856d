"""May this request wait on an outbound call here, or must it move to a thread first?

The keep-alive worker (``broker.server``) serves requests on its one loop thread; a request
that waits there for a JWKS or upstream Cognito makes every other connection of the worker
wait too. But most requests that *could* wait do not: the JWKS is cached, the token is in
the cache. So the worker serves every request on its loop first, with waiting not allowed
(``environ[ENVIRON_KEY] = False``), and code that is about to make an outbound call calls
:func:`check` first: on the loop it raises :class:`WouldBlock`, and the worker serves the
request again, from the start, in one of its threads, where waiting is allowed. Everywhere
else (gunicorn's sync worker, ``flask run``, the test client, a worker without threads) the
key is absent and :func:`check` does nothing.

The rule for callers: call :func:`check` before the request has changed anything (no
counter bumped, no lock taken, no state of a cache moved), since the request runs again
from the start. The front doors (``broker.http.pipeline``) set the flag for the door's code and let
:class:`WouldBlock` through to the worker without answering, counting or logging anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token
from typing import Any, Final

#: Set by the keep-alive worker: False while a request is served on its loop.
ENVIRON_KEY: Final = "broker.may_wait"

_MAY_WAIT: ContextVar[bool] = ContextVar("broker_may_wait", default=True)


class WouldBlock(Exception):  # noqa: N818 - a signal to the worker, not an error
    """This request is about to wait on an outbound call on the worker's loop: serve it in
    a thread instead."""


def check() -> None:
    """Raise :class:`WouldBlock` unless this request may wait here."""
    if not _MAY_WAIT.get():
        raise WouldBlock


def may_wait() -> bool:
    return _MAY_WAIT.get()


def begin(environ: Mapping[str, Any]) -> Token[bool]:
    """For the request of ``environ``, in the thread serving it; give the token to
    :func:`end` when done."""
    return _MAY_WAIT.set(bool(environ.get(ENVIRON_KEY, True)))


def end(token: Token[bool]) -> None:
    _MAY_WAIT.reset(token)
