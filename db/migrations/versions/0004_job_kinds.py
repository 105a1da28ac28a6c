"""jobs: kind (training, evaluation, sample), the task's inputs, its result

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 12:00:00.000000

Adds `kind` (`training` for every existing job: only training jobs existed until now),
`task` (what an evaluation or a sample job was asked, as submitted: null for training) and
`result` (what it measured or generated: null for training, whose result is an adapter),
and an index on (kind, parent_adapter_id) that lists an adapter's evaluations.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="training", nullable=False)
        )
        batch_op.add_column(sa.Column("task", _JSON, nullable=True))
        batch_op.add_column(sa.Column("result", _JSON, nullable=True))
        batch_op.create_index("ix_jobs_kind_parent", ["kind", "parent_adapter_id"])


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_kind_parent")
        batch_op.drop_column("result")
        batch_op.drop_column("task")
        batch_op.drop_column("kind")
