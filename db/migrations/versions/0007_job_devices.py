"""jobs: devices a job needs

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 07:10:00.000000

Adds `devices`, the number of devices the job's actor runs on
(`cluster.component_placement.actor`, parsed at submit): 1 for every existing job (each ran
on one device), NULL for `all` (whatever the claiming worker offers).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("devices", sa.Integer(), server_default="1", nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("devices")
