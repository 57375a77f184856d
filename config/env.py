"""Typed readers of one environment variable each, for every module of ``config/``.

Each reads only the mapping it is given (the settings stay a pure function of it), treats
a variable that is unset or blank as its default, and raises :class:`ConfigError` naming
the variable. The wording of a bad value is the caller's where it differs (``invalid``,
``bounds``), so every message stays the one the documentation and the tests show.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TypeVar

from config.errors import ConfigError

T = TypeVar("T")
N = TypeVar("N", int, float)

NOT_WHOLE = "{name} must be a whole number, got {raw!r}"
NOT_SECONDS = "{name} must be a number of seconds, got {raw!r}"
BETWEEN_0_AND_60_SECONDS = "{name} must be between 0 and 60 seconds, got {raw!r}"


def text(environ: Mapping[str, str], name: str) -> str:
    """The variable without surrounding blanks; "" when unset."""
    return environ.get(name, "").strip()


def required(environ: Mapping[str, str], name: str, what: str, when: str = "") -> str:
    """A variable that must be set: ``{name} is required{when} ({what})`` otherwise."""
    value = text(environ, name)
    if not value:
        raise ConfigError(f"{name} is required{when} ({what})")
    return value


def read_int(
    environ: Mapping[str, str],
    name: str,
    default: T,
    *,
    low: int | None = None,
    high: int | None = None,
    invalid: str = NOT_WHOLE,
) -> int | T:
    """A whole number in ``low..high`` (either may be open), or ``default`` when unset."""
    parsed = _parse(environ, name, int, invalid)
    if parsed is None:
        return default
    value = parsed[1]
    if (low is not None and value < low) or (high is not None and value > high):
        if high is None:
            raise ConfigError(f"{name} must be at least {low}, got {value}")
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def read_float(
    environ: Mapping[str, str],
    name: str,
    default: float,
    *,
    high: float,
    bounds: str,
    zero: bool = False,
    invalid: str = NOT_SECONDS,
) -> float:
    """A finite number above 0 (from 0 when ``zero``) and at most ``high``, or ``default``
    when unset; ``bounds`` words the range (formatted with ``name``, ``raw`` and ``high``)."""
    parsed = _parse(environ, name, float, invalid)
    if parsed is None:
        return default
    raw, value = parsed
    above_low = value >= 0 if zero else value > 0
    if not math.isfinite(value) or not above_low or value > high:
        raise ConfigError(bounds.format(name=name, raw=raw, high=high))
    return value


def _parse(
    environ: Mapping[str, str], name: str, convert: Callable[[str], N], invalid: str
) -> tuple[str, N] | None:
    """The raw text and its value, None when unset; ``invalid`` words a value ``convert``
    refuses (formatted with ``name`` and ``raw``)."""
    raw = text(environ, name)
    if not raw:
        return None
    try:
        return raw, convert(raw)
    except ValueError:
        raise ConfigError(invalid.format(name=name, raw=raw)) from None


def read_choice(
    environ: Mapping[str, str], name: str, choices: Sequence[str], default: T, invalid: str
) -> str | T:
    """One of ``choices`` (compared in lower case), or ``default`` when unset; ``invalid``
    words a bad value (formatted with ``name``, ``raw`` and ``choices``)."""
    raw = text(environ, name).lower()
    if not raw:
        return default
    if raw not in choices:
        raise ConfigError(invalid.format(name=name, raw=raw, choices=", ".join(choices)))
    return raw


def matches(pattern: str, value: str, maximum: int) -> bool:
    """``value`` has 1..maximum characters and matches ``pattern`` whole."""
    return 1 <= len(value) <= maximum and re.fullmatch(pattern, value) is not None


def is_loopback(host: str, names: Collection[str]) -> bool:
    """``host`` is a loopback address (127.0.0.0/8, ::1) or one of ``names``."""
    if host in names:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_pairs(environ: Mapping[str, str], name: str, max_target_length: int) -> dict[str, str]:
    """``source:tag,source2:tag2`` -> {source: tag}: each tag (a principal tag key, at most
    ``max_target_length`` characters) named once."""
    result: dict[str, str] = {}
    raw = text(environ, name)
    for item in (i.strip() for i in raw.split(",") if i.strip()):
        source, sep, tag = (part.strip() for part in item.partition(":"))
        if not sep or not source or not tag:
            raise ConfigError(f"{name} must be comma-separated SOURCE:TAG pairs, got {item!r}")
        if len(tag) > max_target_length:
            raise ConfigError(f"{name}: tag {tag[:20]!r}... is over {max_target_length} characters")
        if tag in result.values():
            raise ConfigError(f"{name}: tag {tag!r} is named twice")
        result[source] = tag
    return result
