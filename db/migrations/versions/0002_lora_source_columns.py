"""jobs: what lora_path resolved to at submit, as columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:00:00.000000

Adds `lora_source_kind`, `source_checkpoint_id` (indexed: pruning looks jobs up by it) and
`lora_local_path`, and fills them for existing jobs from their stored spec's lora_path.
The forms are recognised here with a copy of the rules of that day, so this migration does
not change when service code does. Registry forms were already pinned to
`parent_adapter_id` at submit; a checkpoint keeps the `parent_adapter_id` submit gave it.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_CHECKPOINT_ID = re.compile(r"ck_[0-9a-hjkmnp-tv-z]{26}")
_BATCH = 500


def _columns_for(lora_path: str) -> dict[str, Any]:
    """The new columns of a job whose spec names `lora_path` (validated when it was submitted)."""
    if lora_path.startswith("/"):
        return {"lora_source_kind": "local", "lora_local_path": os.path.realpath(lora_path)}
    candidate = lora_path
    if "://" in lora_path:
        segments = [unquote(s) for s in urlsplit(lora_path).path.rstrip("/").split("/")]
        if len(segments) >= 4 and segments[-2] == "checkpoints":
            candidate = segments[-1]
    if _CHECKPOINT_ID.fullmatch(candidate):
        return {"lora_source_kind": "checkpoint", "source_checkpoint_id": candidate}
    return {"lora_source_kind": "adapter"}


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lora_source_kind", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("source_checkpoint_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("lora_local_path", sa.Text(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_jobs_source_checkpoint_id"), ["source_checkpoint_id"], unique=False
        )

    jobs = sa.table(
        "jobs",
        sa.column("id", sa.String()),
        sa.column("spec", _JSON),
        sa.column("lora_source_kind", sa.String()),
        sa.column("source_checkpoint_id", sa.String()),
        sa.column("lora_local_path", sa.Text()),
    )
    connection = op.get_bind()
    after = ""
    while True:
        rows = connection.execute(
            sa.select(jobs.c.id, jobs.c.spec)
            .where(jobs.c.id > after)
            .order_by(jobs.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        for job_id, spec in rows:
            model = ((spec or {}).get("actor") or {}).get("model") or {}
            lora_path = model.get("lora_path")
            if isinstance(lora_path, str) and lora_path:
                connection.execute(
                    jobs.update().where(jobs.c.id == job_id).values(**_columns_for(lora_path))
                )
        after = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_jobs_source_checkpoint_id"))
        batch_op.drop_column("lora_local_path")
        batch_op.drop_column("source_checkpoint_id")
        batch_op.drop_column("lora_source_kind")
