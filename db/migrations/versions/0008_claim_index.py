"""jobs: the claim index in the claim's order

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 08:20:00.000000

`ix_jobs_claim` was (state, priority, created_at), all ascending, while a claim takes the
queued job with the highest priority, then the oldest, then the lowest id: PostgreSQL could
not read that order off the index and sorted every queued row on each claim (1.1 ms with 600
queued, growing with the queue). Rebuilt as (state, priority DESC, created_at, id), the claim
reads the first entry under `queued`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_claim")
        batch_op.create_index("ix_jobs_claim", ["state", sa.text("priority DESC"), "created_at",
                                                "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_claim")
        batch_op.create_index("ix_jobs_claim", ["state", "priority", "created_at"], unique=False)
