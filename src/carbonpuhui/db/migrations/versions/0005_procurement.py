"""Procurement: tenders, sealed bids and their evaluations.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:53:06.906016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tenders',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('agency_org', sa.String(length=100), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('category', sa.String(length=100), nullable=False),
    sa.Column('functional_unit', sa.String(length=32), nullable=False),
    sa.Column('quantity', sa.String(length=64), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=False),
    sa.Column('max_kgco2e_per_unit', sa.String(length=64), nullable=True),
    sa.Column('label_required', sa.Boolean(), nullable=False),
    sa.Column('weight_price', sa.String(length=64), nullable=False),
    sa.Column('weight_carbon', sa.String(length=64), nullable=False),
    sa.Column('weight_quality', sa.String(length=64), nullable=False),
    sa.Column('carbon_method', sa.String(length=16), nullable=False),
    sa.Column('shadow_price_cents_per_tco2e', sa.BigInteger(), nullable=True),
    sa.Column('weight_ranges', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('benchmark', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.CheckConstraint("carbon_method IN ('ratio_to_best','linear','benchmark','monetised')", name=op.f('ck_tenders_method_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenders'))
    )
    with op.batch_alter_table('tenders', schema=None) as batch_op:
        batch_op.create_index('ix_tenders_agency', ['agency_org', 'deadline'], unique=False)
        batch_op.create_index('ix_tenders_deadline', ['deadline', 'id'], unique=False)

    op.create_table('bids',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('tender_id', sa.String(length=36), nullable=False),
    sa.Column('supplier_org', sa.String(length=100), nullable=False),
    sa.Column('submitted_by', sa.String(length=200), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('price_cents', sa.BigInteger(), nullable=False),
    sa.Column('footprint_source', sa.String(length=16), nullable=False),
    sa.Column('kgco2e_per_unit', sa.String(length=64), nullable=False),
    sa.Column('median_kgco2e_per_unit', sa.String(length=64), nullable=False),
    sa.Column('gsd', sa.Float(), nullable=False),
    sa.Column('label_id', sa.String(length=36), nullable=True),
    sa.Column('label_scheme', sa.String(length=16), nullable=True),
    sa.Column('quality_score', sa.String(length=64), nullable=True),
    sa.Column('receipt_sha256', sa.String(length=64), nullable=False),
    sa.Column('canonical', sa.Text(), nullable=False),
    sa.CheckConstraint("footprint_source IN ('declared','label')", name=op.f('ck_bids_source_known')),
    sa.CheckConstraint('price_cents > 0', name=op.f('ck_bids_price_positive')),
    sa.ForeignKeyConstraint(['tender_id'], ['tenders.id'], name=op.f('fk_bids_tender_id_tenders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bids'))
    )
    with op.batch_alter_table('bids', schema=None) as batch_op:
        batch_op.create_index('ix_bids_tender', ['tender_id', 'id'], unique=False)
        batch_op.create_index('uq_bids_supplier', ['tender_id', 'supplier_org'], unique=True)

    op.create_table('tender_evaluations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('tender_id', sa.String(length=36), nullable=False),
    sa.Column('samples', sa.Integer(), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=False),
    sa.Column('evaluated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('evaluated_by', sa.String(length=200), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['tender_id'], ['tenders.id'], name=op.f('fk_tender_evaluations_tender_id_tenders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tender_evaluations'))
    )
    with op.batch_alter_table('tender_evaluations', schema=None) as batch_op:
        batch_op.create_index('ix_tender_evaluations_tender', ['tender_id', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tender_evaluations', schema=None) as batch_op:
        batch_op.drop_index('ix_tender_evaluations_tender')

    op.drop_table('tender_evaluations')
    with op.batch_alter_table('bids', schema=None) as batch_op:
        batch_op.drop_index('uq_bids_supplier')
        batch_op.drop_index('ix_bids_tender')

    op.drop_table('bids')
    with op.batch_alter_table('tenders', schema=None) as batch_op:
        batch_op.drop_index('ix_tenders_deadline')
        batch_op.drop_index('ix_tenders_agency')

    op.drop_table('tenders')
