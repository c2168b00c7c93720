"""Who an SLA email goes to: `assegnatario`, `richiedente`, `ruolo:<role>`, `casella:<id>`, a person id
or an address, resolved for one ticket.

A role is looked up among the people of the ticket's office first; if nobody there has it (the
regional directorate, the CODER president), among the people of the other offices of the same region.
Never further: a national role is not stood in for by a regional person.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from daemon.config import Config, Person
    from storage.models import Ticket

__all__ = ["Recipients", "RecipientResolver"]


@dataclass(frozen=True)
class Recipients:
    to: tuple[str, ...]
    cc: tuple[str, ...]


class RecipientResolver:
    def __init__(self, config: Config) -> None:
        self.config = config
        self._people = {p.id: p for p in config.people}
        self._mailboxes = {m.id: m.address for m in config.mailboxes}
        self._region = {o.id: o.region for o in config.offices}

    @lru_cache(maxsize=1024)  # noqa: B019 - one resolver per runtime, a handful of (role, office) pairs
    def role(self, role: str, office: str) -> tuple[str, ...]:
        people = [p for p in self.config.people if role in p.roles and office in p.offices]
        if not people:
            region = self._region.get(office)
            people = [
                p
                for p in self.config.people
                if role in p.roles and any(self._region.get(o) == region for o in p.offices)
            ]
        return tuple(p.address for p in people)

    @lru_cache(maxsize=256)  # noqa: B019
    def people_with_role(self, role: str, office: str) -> tuple[Person, ...]:
        """The people of that office (only) with that role."""
        return tuple(p for p in self.config.people if role in p.roles and office in p.offices)

    def person(self, person_id: str | None) -> Person | None:
        return self._people.get(person_id or "")

    def assignee(self, ticket: Ticket) -> tuple[str, ...]:
        """The assignee's address; without one, the office's referents."""
        person = self._people.get(ticket.assignee or "")
        if person is not None:
            return (person.address,)
        return self.role("referente", ticket.office)

    def one(self, spec: str, ticket: Ticket) -> tuple[str, ...]:
        if spec == "assegnatario":
            return self.assignee(ticket)
        if spec == "richiedente":
            return (ticket.requester,) if ticket.requester else ()
        if spec.startswith("ruolo:"):
            return self.role(spec[len("ruolo:") :], ticket.office)
        if spec.startswith("casella:"):
            address = self._mailboxes.get(spec[len("casella:") :])
            return (address,) if address else ()
        if "@" in spec:
            return (spec,)
        person = self._people.get(spec)
        return (person.address,) if person is not None else ()

    def many(self, specs: Iterable[str], ticket: Ticket) -> tuple[str, ...]:
        out: dict[str, None] = {}
        for spec in specs:
            for address in self.one(spec, ticket):
                out.setdefault(address, None)
        return tuple(out)

    def resolve(self, to: Iterable[str], cc: Iterable[str], ticket: Ticket) -> Recipients:
        main = self.many(to, ticket)
        seen = {a.lower() for a in main}
        copies = tuple(a for a in self.many(cc, ticket) if a.lower() not in seen)
        return Recipients(main, copies)
