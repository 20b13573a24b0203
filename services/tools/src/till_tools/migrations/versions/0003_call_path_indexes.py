"""call path indexes: SKU lookups by lower(sku), no redundant audit index (docs/decisions.md D893)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 22:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # UNIQUE(store_id, seq) already indexes audit rows by store: this one only cost a page per call
    op.drop_index('ix_audit_entries_store_id', table_name='audit_entries')
    op.create_index('ix_variants_store_lower_sku', 'variants', ['store_id', sa.text('lower(sku)')], unique=False)


def downgrade() -> None:
    op.drop_index('ix_variants_store_lower_sku', table_name='variants')
    op.create_index('ix_audit_entries_store_id', 'audit_entries', ['store_id'], unique=False)
