"""index for the per-sender acknowledgement budget

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_inbound_sender_processed", "inbound_messages", ["sender", "processed_at"])


def downgrade() -> None:
    op.drop_index("ix_inbound_sender_processed", table_name="inbound_messages")
