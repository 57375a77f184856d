"""How many connections each worker holds, shared by the workers of one gunicorn master.

Every worker is woken for a new connection; the one holding the fewest should take it, or
kept-alive connections pile up on whichever worker happened to be awake and its clients
queue behind each other while other workers have few. So each worker publishes its count in
a small table of shared memory (made in the master, inherited by every worker it forks) and
lets a lighter worker go first.

A worker claims the first free slot from ``age % slots`` on (gunicorn numbers its workers
by age): free means empty, or naming a pid that is gone (a worker killed without releasing
it). Only with more live workers than slots do two share one, which blurs the counts.
"""

from __future__ import annotations

import mmap
import os
import struct

SLOT = struct.Struct("ii")  # pid, connections held


class Loads:
    def __init__(self, slots: int) -> None:
        self._slots = slots
        self._map = mmap.mmap(-1, slots * SLOT.size)  # MAP_SHARED: one table for all
        self._mine = -1

    def claim(self, age: int) -> None:
        """In a worker, once, after the fork."""
        me = os.getpid()
        first = age % self._slots
        self._mine = first
        for step in range(self._slots):
            index = (first + step) % self._slots
            pid, _ = SLOT.unpack_from(self._map, index * SLOT.size)
            if pid <= 0 or pid == me or not _alive(pid):
                self._mine = index
                break
        SLOT.pack_into(self._map, self._mine * SLOT.size, me, 0)

    def publish(self, held: int) -> None:
        if self._mine >= 0:
            SLOT.pack_into(self._map, self._mine * SLOT.size, os.getpid(), held)

    def release(self) -> None:
        """At exit; a slot another worker took over (more workers than slots) is left."""
        if self._mine >= 0:
            pid, _ = SLOT.unpack_from(self._map, self._mine * SLOT.size)
            if pid == os.getpid():
                SLOT.pack_into(self._map, self._mine * SLOT.size, 0, 0)

    def lighter_than(self, held: int) -> bool:
        """Does another live worker hold fewer connections than ``held``?"""
        me = os.getpid()
        for index, (pid, count) in enumerate(SLOT.iter_unpack(self._map)):
            if pid <= 0 or count >= held or index == self._mine or pid == me:
                continue
            if _alive(pid):  # not killed without releasing its slot
                return True
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, under another user
    return True
