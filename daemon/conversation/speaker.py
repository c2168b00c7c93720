"""Who is speaking, decided once per message: requester, referent, other staff, allowed sender, our own
instance or a stranger, and whether the claim is authenticated."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from daemon.config import Config, Mailbox, Person

__all__ = [
    "EXTERNAL_ROLES",
    "REQUESTER_ROLES",
    "Role",
    "Speaker",
    "TicketFacts",
    "identify",
    "is_referent",
    "requester_role",
]

# Who a ticket's requester is, for the steps that may write to third parties (the Ordine, CODER):
# a citizen's personal data never goes to them.
REQUESTER_ROLES = ("cittadino", "professionista", "ordine", "ufficio")
PROFESSIONAL_TAG = "professionista"

# People listed in config.yaml who are not office staff: they write to us, never for us.
EXTERNAL_ROLES = frozenset({"ordine", "presidente_coder"})


class Role(StrEnum):
    REQUESTER = "richiedente"
    REFERENT = "referente"
    STAFF = "personale"
    ALLOWED = "mittente_abilitato"
    INSTANCE = "sportello"
    STRANGER = "estraneo"


@dataclass(frozen=True)
class TicketFacts:
    """What the speaker decision needs of the cited ticket."""

    id: str
    requester: str
    office: str
    assignee: str | None


@dataclass(frozen=True)
class Speaker:
    role: Role
    authenticated: bool
    reason: str
    person_id: str | None = None
    # The sender claims an address whose word counts (staff, an allowed sender, the Ordine):
    # such a claim that does not authenticate is a forgery until proven otherwise.
    claims_authority: bool = False

    @property
    def suspicious(self) -> bool:
        return self.claims_authority and not self.authenticated

    @property
    def acts_as_referent(self) -> bool:
        return self.role is Role.REFERENT and self.authenticated

    def to_dict(self) -> dict[str, object]:
        return {
            "speaker_role": self.role.value,
            "speaker_authenticated": self.authenticated,
            "speaker_person": self.person_id,
            "speaker_reason": self.reason,
        }


def is_referent(person: Person, ticket: TicketFacts) -> bool:
    """Staff of the ticket's office (or its assignee) may answer and run commands on it."""
    if person.id == ticket.assignee:
        return True
    if EXTERNAL_ROLES.intersection(person.roles):
        return False
    return not person.offices or ticket.office in person.offices


def identify(
    sender: str,
    *,
    ticket: TicketFacts | None,
    mailbox: Mailbox,
    config: Config,
    auth_passed: bool,
    auth_reason: str,
    token_ticket: str | None,
    own_hop: int | None,
    requester: str = "",
) -> Speaker:
    """`token_ticket`: the ticket of a signed Message-ID we sent to this sender that the message
    references (None if none verifies); `own_hop`: the hop count of our own verified loop header;
    `requester`: the address the message would be answered at (as tickets record their requester)."""
    if own_hop is not None:
        return Speaker(Role.INSTANCE, True, f"intestazione firmata di sportello (passaggio {own_hop})")
    sender = sender.lower()
    person = config.person_by_address(sender) if sender else None
    external = person is not None and bool(EXTERNAL_ROLES.intersection(person.roles))
    if person is not None and not external:
        if ticket is not None and is_referent(person, ticket):
            if not auth_passed:
                return Speaker(Role.REFERENT, False, auth_reason, person.id, claims_authority=True)
            if token_ticket != ticket.id:
                reason = "non risponde a un messaggio firmato inviato a questa persona per questa pratica"
                return Speaker(Role.REFERENT, False, reason, person.id, claims_authority=True)
            return Speaker(Role.REFERENT, True, "referente autenticato con token valido", person.id, True)
        return Speaker(Role.STAFF, auth_passed, auth_reason, person.id, claims_authority=True)
    allowed = {a.lower() for a in mailbox.allowed_senders}
    if sender and (sender in allowed or external):
        role = Role.REQUESTER if ticket is not None and ticket.requester in (sender, requester) else Role.ALLOWED
        return Speaker(role, auth_passed, auth_reason, person.id if person else None, claims_authority=True)
    if ticket is not None and sender and ticket.requester in (sender, requester.lower()):
        return Speaker(Role.REQUESTER, False, "indirizzo del richiedente della pratica")
    return Speaker(Role.STRANGER, False, "mittente senza legami con la pratica" if ticket else "mittente esterno")


def requester_role(config: Config, address: str, tags: tuple[str, ...] | list[str] = ()) -> str:
    """`ordine` for the Ordine, `ufficio` for our own mailboxes and staff, `professionista` for a
    ticket a rule tagged so, else `cittadino`."""
    address = address.lower()
    person = config.person_by_address(address)
    if person is not None and "ordine" in person.roles:
        return "ordine"
    if address in config.own_addresses or (person is not None and not EXTERNAL_ROLES.intersection(person.roles)):
        return "ufficio"
    return "professionista" if PROFESSIONAL_TAG in tags else "cittadino"
