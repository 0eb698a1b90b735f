"""issues.plan_sha256: the hash of the plan, so publish tells a changed issue without
loading every plan (issue 16, point 3). Existing rows get theirs here.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 05:15:13.631071
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_sha256", sa.String(length=64), nullable=True))
    issues = sa.table(
        "issues", sa.column("id", sa.Integer), sa.column("plan", sa.Text), sa.column("plan_sha256")
    )
    bind = op.get_bind()
    for row_id, plan in bind.execute(sa.select(issues.c.id, issues.c.plan)).all():
        digest = hashlib.sha256(plan.encode("utf-8")).hexdigest() if plan else None
        bind.execute(issues.update().where(issues.c.id == row_id).values(plan_sha256=digest))


def downgrade() -> None:
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.drop_column("plan_sha256")
