"""adapters: serving verdicts

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 07:10:00.000000

Adds `serving` (the vLLM and peft verdicts, JSON) and the two flags `GET /adapters?servable=`
filters on, `vllm_servable` and `peft_servable`, with an index per flag. Existing LoRA
adapters start with none: the verdicts are computed from their files, which live in the
artifact store and not in the database, so the API computes them when it starts
(`service/registry/serving.py: backfill_verdicts`); full models never have any.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("adapters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("serving", _JSON, nullable=True))
        batch_op.add_column(sa.Column("vllm_servable", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("peft_servable", sa.Boolean(), nullable=True))
        batch_op.create_index("ix_adapters_vllm_servable", ["project", "vllm_servable"])
        batch_op.create_index("ix_adapters_peft_servable", ["project", "peft_servable"])


def downgrade() -> None:
    with op.batch_alter_table("adapters", schema=None) as batch_op:
        batch_op.drop_index("ix_adapters_peft_servable")
        batch_op.drop_index("ix_adapters_vllm_servable")
        batch_op.drop_column("peft_servable")
        batch_op.drop_column("vllm_servable")
        batch_op.drop_column("serving")
