"""Statistics: organisations, sites, export shipments, quarterly reports; product sites, tender awards; an index on labels.gtin.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 16:45:14.254368
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('organisations',
    sa.Column('org', sa.String(length=100), nullable=False),
    sa.Column('names', sa.JSON(), nullable=False),
    sa.Column('division_code', sa.String(length=6), nullable=False),
    sa.Column('industry', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.CheckConstraint('length(division_code) = 6', name=op.f('ck_organisations_division_six_digits')),
    sa.PrimaryKeyConstraint('org', name=op.f('pk_organisations'))
    )
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.create_index('ix_organisations_division', ['division_code', 'industry'], unique=False)

    op.create_table('stat_reports',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('city_code', sa.String(length=6), nullable=False),
    sa.Column('quarter', sa.String(length=6), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('content_sha256', sa.String(length=64), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_by', sa.String(length=200), nullable=False),
    sa.Column('submitted_org', sa.String(length=100), nullable=True),
    sa.Column('note', sa.String(length=1000), nullable=True),
    sa.Column('private_atoms', sa.JSON(none_as_null=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stat_reports'))
    )
    with op.batch_alter_table('stat_reports', schema=None) as batch_op:
        batch_op.create_index('uq_stat_reports_revision', ['city_code', 'quarter', 'revision'], unique=True)

    op.create_table('sites',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('org', sa.String(length=100), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('division_code', sa.String(length=6), nullable=False),
    sa.Column('industry', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.CheckConstraint('length(division_code) = 6', name=op.f('ck_sites_division_six_digits')),
    sa.ForeignKeyConstraint(['org'], ['organisations.org'], name=op.f('fk_sites_org_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sites'))
    )
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.create_index('ix_sites_org', ['org', 'id'], unique=False)

    op.create_table('export_shipments',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('org', sa.String(length=100), nullable=False),
    sa.Column('quarter', sa.String(length=6), nullable=False),
    sa.Column('gtin', sa.String(length=14), nullable=False),
    sa.Column('hs_code', sa.String(length=10), nullable=False),
    sa.Column('destination', sa.String(length=2), nullable=False),
    sa.Column('quantity', sa.String(length=64), nullable=False),
    sa.Column('value_cents', sa.BigInteger(), nullable=False),
    sa.Column('batch_id', sa.String(length=36), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.CheckConstraint('value_cents >= 0', name=op.f('ck_export_shipments_value_not_negative')),
    sa.ForeignKeyConstraint(['gtin'], ['products.gtin'], name=op.f('fk_export_shipments_gtin_products'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export_shipments'))
    )
    with op.batch_alter_table('export_shipments', schema=None) as batch_op:
        batch_op.create_index('ix_export_shipments_org', ['org', 'quarter', 'id'], unique=False)
        batch_op.create_index('ix_export_shipments_quarter', ['quarter', 'org'], unique=False)

    # Plain ADD COLUMN, never a batch copy: on SQLite, re-creating products or tenders would run their
    # children's ON DELETE CASCADE (inventories, labels, bids) when the old table is dropped.
    op.add_column('products', sa.Column('site_id', sa.String(length=36), nullable=True))
    op.add_column('tenders', sa.Column('awarded_bid_id', sa.String(length=36), nullable=True))
    op.add_column('tenders', sa.Column('awarded_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('tenders', sa.Column('awarded_by', sa.String(length=200), nullable=True))
    op.create_index('ix_labels_gtin', 'labels', ['gtin'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_labels_gtin', table_name='labels')
    op.drop_column('tenders', 'awarded_by')
    op.drop_column('tenders', 'awarded_at')
    op.drop_column('tenders', 'awarded_bid_id')
    op.drop_column('products', 'site_id')

    with op.batch_alter_table('export_shipments', schema=None) as batch_op:
        batch_op.drop_index('ix_export_shipments_quarter')
        batch_op.drop_index('ix_export_shipments_org')

    op.drop_table('export_shipments')
    with op.batch_alter_table('sites', schema=None) as batch_op:
        batch_op.drop_index('ix_sites_org')

    op.drop_table('sites')
    with op.batch_alter_table('stat_reports', schema=None) as batch_op:
        batch_op.drop_index('uq_stat_reports_revision')

    op.drop_table('stat_reports')
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_index('ix_organisations_division')

    op.drop_table('organisations')
