"""Alerts: when the admins' digest told of each one

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True))
    # Alerts recorded before the digest existed are not mailed out all at once after the upgrade.
    op.execute("UPDATE alerts SET notified_at = at")


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("notified_at")
