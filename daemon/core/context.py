"""What every email template sees: one builder of the `pratica`, `casella`, `ufficio` and `messaggio`
variables, for the acknowledgements and replies of intake, the conversation and the SLA steps alike."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from daemon.config import Config, Mailbox
from daemon.core.analysis import Analysis
from storage.models import Ticket, TicketState

__all__ = ["ContextBuilder"]

STATE_LABELS: dict[str, str] = {
    TicketState.APERTA: "aperta",
    TicketState.IN_CARICO: "presa in carico",
    TicketState.IN_ATTESA: "in attesa di Sue informazioni",
    TicketState.CHIUSA: "chiusa",
}


class ContextBuilder:
    """`answer_days(policy_id)`: the term of a ticket's SLA policy in working days (the instance's
    default when the SLA clock is off)."""

    def __init__(self, config: Config, answer_days: Callable[[str | None], int] | None = None) -> None:
        self.config = config
        self._answer_days = answer_days or (lambda _p: config.instance.answer_working_days)

    def answer_days(self, ticket: Ticket | None) -> int:
        return self._answer_days(ticket.sla_policy if ticket is not None else None)

    def ticket(self, ticket: Ticket, *, origin_message_id: str | None = None) -> dict[str, Any]:
        mailbox = self._mailbox(ticket.mailbox)
        return {
            "id": ticket.id,
            "protocollo": ticket.id,
            "identificativo_pec": ticket.pec_identificativo,
            "message_id": origin_message_id,
            "oggetto": ticket.subject,
            "richiedente": ticket.requester,
            "nome_richiedente": ticket.requester_name,
            "ricevuta_il": ticket.received_at,
            "aperta_il": ticket.created_at,
            "scadenza": ticket.due_at,
            "stato": ticket.state,
            "stato_descrizione": STATE_LABELS.get(ticket.state, ticket.state),
            "esito": ticket.close_outcome,
            "chiusa_il": ticket.closed_at,
            "aggiornata_il": ticket.updated_at,
            "coda": ticket.queue,
            "priorita": ticket.priority,
            "assegnatario": ticket.assignee,
            "casella": mailbox.address if mailbox is not None else "",
            "collegata_a": ticket.linked_to,
            "codici_fiscali": list(ticket.codici_fiscali or ()),
            # What a person reads: the vocabulary's labels, the ids only where no label was recorded.
            "gestione": _label(ticket.classification, "gestione"),
            "argomento": _label(ticket.classification, "argomento"),
        }

    def mailbox(self, mailbox: Mailbox) -> dict[str, Any]:
        return {"id": mailbox.id, "indirizzo": mailbox.address, "nome": mailbox.name, "tipo": mailbox.kind}

    def office(self, office_id: str) -> dict[str, Any]:
        office = next((o for o in self.config.offices if o.id == office_id), None)
        return {"id": office_id, "nome": office.name if office is not None else office_id}

    def for_ticket(self, ticket: Ticket, **extra: Any) -> dict[str, Any]:
        """The context of an email about a ticket, sent from the ticket's mailbox."""
        mailbox = self._mailbox(ticket.mailbox) or self.config.mailboxes[0]
        ctx: dict[str, Any] = {
            "pratica": self.ticket(ticket),
            "casella": self.mailbox(mailbox),
            "ufficio": self.office(ticket.office),
            "giorni_risposta": self.answer_days(ticket),
        }
        ctx.update(extra)
        return ctx

    def for_arrival(
        self, analysis: Analysis, mailbox: Mailbox, received_at: datetime, ticket: Ticket | None
    ) -> dict[str, Any]:
        """The context of an answer to a message just received (acknowledgement, rejection, forward)."""
        msg = analysis.effective or analysis.envelope
        return {
            "messaggio": {
                "oggetto": msg.subject if msg else "",
                "mittente": analysis.requester,
                "nome_mittente": msg.sender_name if msg else "",
                "data_ricezione": received_at,
                "message_id": msg.message_id if msg else None,
            },
            "casella": self.mailbox(mailbox),
            "ufficio": self.office(mailbox.office),
            "pratica": self.ticket(ticket) if ticket is not None else None,
            "motivo": analysis.decision.reason,
            "classificazione": analysis.classification.to_dict() if analysis.classification is not None else {},
            "parametri": dict(analysis.decision.params),
            "giorni_risposta": self.answer_days(ticket),
        }

    def _mailbox(self, mailbox_id: str) -> Mailbox | None:
        return next((m for m in self.config.mailboxes if m.id == mailbox_id), None)


def _label(classification: dict[str, Any] | None, field: str) -> str | None:
    found = classification or {}
    value = found.get(f"{field}_etichetta") or found.get(field)
    return str(value) if value else None
