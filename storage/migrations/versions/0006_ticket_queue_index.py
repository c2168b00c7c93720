"""Tickets: an index the metrics' per-office, per-queue counts of open tickets read alone

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ticket_state_queue", "tickets", ["state", "office", "queue", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_ticket_state_queue", table_name="tickets")
