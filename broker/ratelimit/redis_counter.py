"""Fixed one-second windows counted in Redis, so every worker and process shares a limit.

One script call per check: the window's counter is created with a two-second expiry and
incremented atomically. Each counter is its own key (its own hash slot on a cluster).
"""

from __future__ import annotations

from broker.store import keys
from broker.store.faults import translates_faults
from broker.store.script_runner import ScriptRunner

# KEYS: the window's counter   ARGV: expiry in milliseconds
COUNT_IN_WINDOW = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
"""

WINDOW_TTL_MS = 2000


@translates_faults
class RedisRateCounter(ScriptRunner):
    def count(self, scope: str, subject: str, second: int) -> int:
        """How many hits ``subject`` has made in this second, this one included."""
        key = f"{keys.PREFIX}:rate:{scope}:{{{subject}}}:{second}"
        return int(self._run(COUNT_IN_WINDOW, [key], [WINDOW_TTL_MS]))
