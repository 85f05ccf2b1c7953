"""Initial schema: the emission-factor database (factor versions).

Revision ID: 0001
Revises:
Create Date: 2026-12-01 05:37:58.763726
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('factor_versions',
    sa.Column('factor_id', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('names', sa.JSON(), nullable=False),
    sa.Column('category', sa.String(length=100), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=False),
    sa.Column('kgco2e_per_unit', sa.String(length=64), nullable=False),
    sa.Column('gwp_basis', sa.String(length=8), nullable=False),
    sa.Column('region', sa.String(length=10), nullable=False),
    sa.Column('tier', sa.String(length=16), nullable=False),
    sa.Column('owner_org', sa.String(length=100), nullable=True),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('uncertainty', sa.JSON(), nullable=False),
    sa.Column('data_quality', sa.JSON(), nullable=True),
    sa.Column('supplements', sa.String(length=100), nullable=True),
    sa.Column('version_note', sa.Text(), nullable=True),
    sa.Column('search_text', sa.Text(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('published_by', sa.String(length=200), nullable=True),
    sa.Column('retired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('retired_by', sa.String(length=200), nullable=True),
    sa.CheckConstraint("status IN ('draft','published','retired')", name=op.f('ck_factor_versions_status_known')),
    sa.CheckConstraint("tier IN ('enterprise','provincial','national','default')", name=op.f('ck_factor_versions_tier_known')),
    sa.CheckConstraint('valid_to IS NULL OR valid_to >= valid_from', name=op.f('ck_factor_versions_validity_ordered')),
    sa.CheckConstraint('version >= 1', name=op.f('ck_factor_versions_version_positive')),
    sa.PrimaryKeyConstraint('factor_id', 'version', name=op.f('pk_factor_versions'))
    )
    op.create_index('ix_factor_versions_content', 'factor_versions', ['factor_id', 'content_hash'])
    op.create_index('ix_factor_versions_lookup', 'factor_versions', ['category', 'unit', 'status'])



def downgrade() -> None:
    op.drop_index('ix_factor_versions_lookup', 'factor_versions')
    op.drop_index('ix_factor_versions_content', 'factor_versions')

    op.drop_table('factor_versions')
