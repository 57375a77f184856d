"""How many connections each worker holds, shared by the workers of one gunicorn master.

Every worker is woken for a new connection; the one holding the fewest should take it, or
kept-alive connections pile up on whichever worker happened to be awake and its clients
queue behind each other while other workers have few. So each worker publishes its count in
a small table of shared memory (made in the master, inherited by every worker it forks) and
lets a lighter worker go first.

A slot is ``age % slots`` (gunicorn numbers its workers by age): two live workers may share
one after many restarts, which only blurs the counts; a slot names its worker's pid, and a
dead worker's slot is ignored.
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
        self._mine = age % self._slots
        SLOT.pack_into(self._map, self._mine * SLOT.size, os.getpid(), 0)

    def publish(self, held: int) -> None:
        if self._mine >= 0:
            SLOT.pack_into(self._map, self._mine * SLOT.size, os.getpid(), held)

    def release(self) -> None:
        if self._mine >= 0:
            SLOT.pack_into(self._map, self._mine * SLOT.size, 0, 0)

    def lighter_than(self, held: int) -> bool:
        """Does another live worker hold fewer connections than ``held``?"""
        me = os.getpid()
        for index, (pid, count) in enumerate(SLOT.iter_unpack(self._map)):
            if pid <= 0 or count >= held or index == self._mine or pid == me:
                continue
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue  # killed without releasing its slot
            except PermissionError:
                pass  # alive, under another user
            return True
        return False
