"""Redis primitives that guard the upstream: the circuit breaker's state and the call quota
(the rules are in ``broker.upstream.guard``).

Both live in Redis so that every gunicorn worker and every broker process on the same Redis
shares them: one quota for the one AWS account, and one breaker for the one upstream. Each
decision is one Lua script, so concurrent workers never both take the last slot or both
become the half-open probe. Keys carry the upstream pool's hash tag.

- breaker ``ib:{<pool>}:upstream:breaker:{failures,open,probe}``: the count of recent
  consecutive failures (expiring ``window`` after the last), a key that exists while the
  breaker is open (expiring after the cooldown), and the half-open probe's claim;
- quota ``ib:{<pool>}:upstream:quota``: the theoretical arrival time (GCRA) of the next call
  in microseconds of Redis's clock (``TIME``), so every process spaces its calls on one clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from broker.store.faults import translates_faults
from broker.store.keys import pool_prefix
from broker.store.script_runner import ScriptRunner

# KEYS: open, failures, probe   ARGV: threshold, probe ttl ms
# -> {0, ms}: refused (open, or another probe is out) for about ms more
#    {1, failures}: closed, call;  {2, failures}: half-open, this caller is the probe
BREAKER_ALLOW: Final = """
local open_ms = redis.call('PTTL', KEYS[1])
if open_ms > 0 then return {0, open_ms} end
local failures = tonumber(redis.call('GET', KEYS[2]) or '0')
if failures < tonumber(ARGV[1]) then return {1, failures} end
if redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[2]) then return {2, failures} end
return {0, math.max(redis.call('PTTL', KEYS[3]), 1)}
"""

# KEYS: open, failures, probe   ARGV: threshold, window ms, cooldown ms  -> 1 if now open
BREAKER_FAILURE: Final = """
local n = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[3])
if n >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[3])
  return 1
end
return 0
"""

# KEYS: next free slot   ARGV: interval us, longest acceptable wait us
# -> the wait in us before the reserved call may start, or -1 (nothing free in time)
QUOTA_RESERVE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now
if wait > tonumber(ARGV[2]) then return -1 end
local nxt = tat + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%d', nxt), 'PX', math.floor((nxt - now) / 1000) + 1000)
return wait
"""


def _upstream_key(pool_id: str, name: str) -> str:
    return f"{pool_prefix(pool_id)}:upstream:{name}"


@dataclass(frozen=True)
class BreakerKeys:
    open: str
    failures: str
    probe: str

    @classmethod
    def of(cls, pool_id: str) -> BreakerKeys:
        return cls(
            _upstream_key(pool_id, "breaker:open"),
            _upstream_key(pool_id, "breaker:failures"),
            _upstream_key(pool_id, "breaker:probe"),
        )

    def as_list(self) -> list[str]:
        return [self.open, self.failures, self.probe]


@translates_faults
class RedisBreakerState(ScriptRunner):
    def allow(self, keys: BreakerKeys, threshold: int, probe_ttl_ms: int) -> tuple[int, int]:
        verdict, detail = self._run(BREAKER_ALLOW, keys.as_list(), [threshold, probe_ttl_ms])
        return int(verdict), int(detail)

    def failure(self, keys: BreakerKeys, threshold: int, window_ms: int, cooldown_ms: int) -> bool:
        opened: Any = self._run(
            BREAKER_FAILURE, keys.as_list(), [threshold, window_ms, cooldown_ms]
        )
        return bool(opened)

    def reset(self, keys: BreakerKeys) -> None:
        self.redis.delete(*keys.as_list())

    def open_ms(self, keys: BreakerKeys) -> int:
        """How much longer the breaker stays open, in ms; 0 when it is closed."""
        return max(0, int(self._call(keys.open, "PTTL", keys.open)))


@translates_faults
class RedisQuota(ScriptRunner):
    def reserve(self, pool_id: str, interval_us: int, max_wait_us: int) -> int:
        """Reserve the next call slot; the microseconds to wait for it, or -1."""
        key = _upstream_key(pool_id, "quota")
        return int(self._run(QUOTA_RESERVE, [key], [interval_us, max(0, max_wait_us)]))
