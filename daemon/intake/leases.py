"""Mailbox leases: several instances on one database, each mailbox read by exactly one of them at a time.

An instance reads a mailbox only while it holds the mailbox's lease row: it renews it every third of
the lease time, and another instance takes it over once it has expired (the holder died or lost the
database). A worker stops reading as soon as its last renewal is older than 90% of the lease time,
before anyone else may take over. Instances beat in `instance_beats`; each takes at most its share of
the mailboxes (all of them divided by the instances alive) and hands over its excess when another
instance arrives. On a clean stop the leases are released at once. A holder with this instance's name
on this host whose process no longer exists (a SIGKILLed predecessor) is not waited for.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Connection, Engine, Table, bindparam, case, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from daemon.clock import utcnow
from storage.models_leases import InstanceBeat, MailboxLease

__all__ = ["LeaseKeeper", "LeaseView", "MailboxLeases", "instance_holder", "lease_views"]

log = logging.getLogger("sportello.leases")

_T = cast(Table, MailboxLease.__table__)
_C = _T.c
_AT = _C.expires_at.type
_RENEW = (
    update(_T)
    .where(_C.mailbox.in_(bindparam("boxes", expanding=True)), _C.holder == bindparam("me"))
    .values(renewed_at=bindparam("now", type_=_AT), expires_at=bindparam("until", type_=_AT))
)
_TAKE = (
    update(_T)
    .where(
        _C.mailbox == bindparam("box"),
        (_C.holder == bindparam("me"))
        | (_C.expires_at <= bindparam("now", type_=_AT))
        | (_C.holder == bindparam("dead")),
    )
    .values(
        holder=bindparam("me"),
        acquired_at=case((_C.holder == bindparam("me"), _C.acquired_at), else_=bindparam("now", type_=_AT)),
        renewed_at=bindparam("now", type_=_AT),
        expires_at=bindparam("until", type_=_AT),
    )
)
_NEW = insert(_T)
_RELEASE = delete(_T).where(_C.mailbox.in_(bindparam("boxes", expanding=True)), _C.holder == bindparam("me"))
_HOLDERS = select(_C.mailbox, _C.holder, _C.expires_at).where(_C.mailbox.in_(bindparam("boxes", expanding=True)))

_B = cast(Table, InstanceBeat.__table__)
_BEAT = update(_B).where(_B.c.holder == bindparam("me")).values(seen_at=bindparam("now", type_=_AT))
_FIRST_BEAT = insert(_B)
_BEATS = select(_B.c.holder, _B.c.seen_at)
_FORGET = delete(_B).where(_B.c.holder.in_(bindparam("holders", expanding=True)))


def instance_holder(name: str) -> str:
    """This process's identity in the lease table: instance name, host, pid."""
    return f"{name}@{socket.gethostname()}:{os.getpid()}"


def _dead_predecessor(holder: str, me: str) -> bool:
    """A holder with this instance's name on this host whose process is gone: a predecessor killed
    before it could release (it cannot renew, so there is no need to wait for its expiry)."""
    where, _, pid = holder.rpartition(":")
    if where != me.rpartition(":")[0] or not pid.isdigit() or holder == me:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


class MailboxLeases:
    """The lease rows of this instance and its heartbeat, in short transactions of their own."""

    def __init__(self, engine: Engine, holder: str, ttl: float, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.engine = engine
        self.holder = holder
        self.ttl = timedelta(seconds=ttl)
        self.clock = clock

    def beat(self) -> None:
        """Record that this instance is alive, and forget the instances that are not any more."""
        now = self.clock()
        with self.engine.begin() as db:
            if db.execute(_BEAT, {"me": self.holder, "now": now}).rowcount == 0:
                db.execute(_FIRST_BEAT, {"holder": self.holder, "started_at": now, "seen_at": now})
            gone = [h for h, seen in db.execute(_BEATS) if not self._alive(h, seen, now)]
            if gone:
                db.execute(_FORGET, {"holders": gone})

    def alive(self) -> int:
        """How many instances are alive on the database, this one included (a read, no write)."""
        now = self.clock()
        with self.engine.connect() as db:
            others = {h for h, seen in db.execute(_BEATS) if h != self.holder and self._alive(h, seen, now)}
        return len(others) + 1

    def _alive(self, holder: str, seen: datetime, now: datetime) -> bool:
        return seen > now - self.ttl and not _dead_predecessor(holder, self.holder)

    def renew(self, boxes: Sequence[str]) -> set[str]:
        """Extend the leases this instance holds among `boxes`; return those still held."""
        if not boxes:
            return set()
        now = self.clock()
        with self.engine.begin() as db:
            db.execute(_RENEW, {"boxes": list(boxes), "me": self.holder, "now": now, "until": now + self.ttl})
            return {box for box, holder, _ in db.execute(_HOLDERS, {"boxes": list(boxes)}) if holder == self.holder}

    def take(self, boxes: Sequence[str], limit: int) -> set[str]:
        """Take up to `limit` of the leases among `boxes` that are free, expired, or held by a dead
        predecessor. Reads first: while every lease is alive elsewhere, nothing is written."""
        if not boxes or limit <= 0:
            return set()
        now = self.clock()
        taken: set[str] = set()
        with self.engine.connect() as db:
            current = {box: (holder, expires) for box, holder, expires in db.execute(_HOLDERS, {"boxes": list(boxes)})}
            db.rollback()
            for box in boxes:
                if len(taken) >= limit:
                    break
                holder, expires = current.get(box, ("", now))
                free = box not in current or expires <= now or holder == self.holder
                if (free or _dead_predecessor(holder, self.holder)) and self._take_one(db, box, holder, now):
                    taken.add(box)
        return taken

    def _take_one(self, db: Connection, box: str, seen_holder: str, now: datetime) -> bool:
        dead = seen_holder if _dead_predecessor(seen_holder, self.holder) else ""
        values = {"box": box, "me": self.holder, "now": now, "until": now + self.ttl, "dead": dead}
        with db.begin():
            if db.execute(_TAKE, values).rowcount == 1:
                return True
            if seen_holder:
                return False
        row = {
            "mailbox": box,
            "holder": self.holder,
            "acquired_at": now,
            "renewed_at": now,
            "expires_at": values["until"],
        }
        try:
            with db.begin():
                db.execute(_NEW, row)
        except IntegrityError:  # another instance inserted it first: theirs
            return False
        return True

    def release(self, boxes: Iterable[str], *, leaving: bool = False) -> None:
        """Give up leases now; `leaving`: this instance stops (its heartbeat goes, with any stale ones)."""
        boxes = list(boxes)
        with self.engine.begin() as db:
            if boxes:
                db.execute(_RELEASE, {"boxes": boxes, "me": self.holder})
            if leaving:
                db.execute(_FORGET, {"holders": [self.holder]})


class LeaseKeeper:
    """One thread per instance keeps its leases: renews them, takes its share of the free ones, hands
    over its excess, and tells the workers which mailboxes they may read."""

    def __init__(self, leases: MailboxLeases, boxes: Sequence[str], *, poll_seconds: float | None = None) -> None:
        self.leases = leases
        self.boxes = list(boxes)
        self._ttl = leases.ttl.total_seconds()
        self._renew_every = self._ttl / 3
        self._poll = poll_seconds if poll_seconds is not None else min(1.0, self._ttl / 10)
        self._renewed: dict[str, float] = {}  # box -> monotonic time of the last successful renewal
        # Handed over: still renewed (nobody may start on it) until its worker has let it go (it waits for
        # its turn again), or at the latest one renewal later.
        self._handing_over: dict[str, float] = {}
        self._waiting: set[str] = set()  # boxes whose worker is in wait(): reading nothing
        self._changed = threading.Condition()

    def held(self, box: str) -> bool:
        """Held and renewed recently enough that nobody else can have taken it over."""
        with self._changed:
            return self._fresh(box)

    def _fresh(self, box: str) -> bool:
        at = self._renewed.get(box)
        return at is not None and time.monotonic() - at < self._ttl * 0.9

    def wait(self, box: str, stop: threading.Event) -> bool:
        """Block until this instance holds `box` (True) or `stop` is set (False). Meanwhile the worker
        reads nothing, so a mailbox being handed over can be released at once."""
        with self._changed:
            self._waiting.add(box)
            try:
                while not stop.is_set():
                    if self._fresh(box):
                        return True
                    self._changed.wait(self._poll)
                return False
            finally:
                self._waiting.discard(box)

    def run(self, stop: threading.Event) -> None:
        last_renewal = 0.0
        while not stop.is_set():
            try:
                started = time.monotonic()
                renewing = started - last_renewal >= self._renew_every
                if renewing:
                    self.leases.beat()
                    mine = [*self._renewed, *self._handing_over]
                    self._note(self.leases.renew(mine), started, mine)
                share = math.ceil(len(self.boxes) / self.leases.alive())
                self._hand_over(share, started)
                if renewing:
                    last_renewal = started
                free = [b for b in self.boxes if b not in self._renewed and b not in self._handing_over]
                taken = self.leases.take(free, share - len(self._renewed) - len(self._handing_over))
                if taken:
                    log.info("caselle prese in carico da %s: %s", self.leases.holder, ", ".join(sorted(taken)))
                    self._note(taken, started, [])
            except Exception:  # the database may be briefly unavailable: held() lapses on its own
                log.warning("rinnovo dei turni delle caselle non riuscito", exc_info=True)
            stop.wait(self._poll)

    def _hand_over(self, share: int, now: float) -> None:
        """Stop reading what exceeds this instance's share; release it once its worker has let it go."""
        with self._changed:
            waiting = set(self._waiting)
        due = [b for b, at in self._handing_over.items() if b in waiting or now - at >= self._renew_every]
        if due:
            self.leases.release(due)
            for box in due:
                del self._handing_over[box]
            log.info("caselle lasciate ad altre istanze: %s", ", ".join(sorted(due)))
        excess = sorted(self._renewed)[share:] if len(self._renewed) > share else []
        with self._changed:
            for box in excess:
                del self._renewed[box]
                self._handing_over[box] = now

    def release(self) -> None:
        """At a clean stop, once the workers have finished: the others need not wait for the expiry."""
        with self._changed:
            mine, self._renewed = [*self._renewed, *self._handing_over], {}
            self._handing_over = {}
        try:
            self.leases.release(mine, leaving=True)
        except Exception:  # the others take over at expiry instead
            log.warning("turni delle caselle non rilasciati", exc_info=True)

    def _note(self, held: set[str], at: float, asked: Sequence[str]) -> None:
        with self._changed:
            for box in asked:
                if box not in held:
                    self._renewed.pop(box, None)
                    self._handing_over.pop(box, None)
                    log.warning("casella %s: turno perso, ora di un'altra istanza", box)
            for box in held:
                if box not in self._handing_over:
                    self._renewed[box] = at
            self._changed.notify_all()


@dataclass(frozen=True)
class LeaseView:
    mailbox: str
    holder: str | None
    acquired_at: datetime | None
    renewed_at: datetime | None
    expires_at: datetime | None


def lease_views(engine: Engine, boxes: Sequence[str]) -> list[LeaseView]:
    """Who holds each of `boxes` (None: nobody yet), for `sportello status`."""
    with engine.connect() as db:
        rows = {r.mailbox: r for r in db.execute(select(_T))}
    return [
        LeaseView(b, r.holder, r.acquired_at, r.renewed_at, r.expires_at)
        if (r := rows.get(b))
        else LeaseView(b, None, None, None, None)
        for b in boxes
    ]
