"""Labels: benchmarks, applications, labels, listings and the certification record.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 10:44:12.357247
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('benchmarks',
    sa.Column('category', sa.String(length=100), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('declared_unit', sa.String(length=32), nullable=False),
    sa.Column('percentiles', sa.JSON(), nullable=False),
    sa.Column('thresholds', sa.JSON(), nullable=False),
    sa.Column('baseline', sa.String(length=64), nullable=False),
    sa.Column('uncertainty_penalty', sa.String(length=64), nullable=False),
    sa.Column('sample_size', sa.Integer(), nullable=True),
    sa.Column('source', sa.String(length=500), nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=200), nullable=False),
    sa.CheckConstraint("method IN ('fixed','percentile')", name=op.f('ck_benchmarks_method_known')),
    sa.PrimaryKeyConstraint('category', name=op.f('pk_benchmarks'))
    )
    op.create_table('certification_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('subject_kind', sa.String(length=16), nullable=False),
    sa.Column('subject_id', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=True),
    sa.Column('actor_sub', sa.String(length=200), nullable=False),
    sa.Column('actor_org', sa.String(length=100), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('detail', sa.JSON(none_as_null=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certification_events'))
    )
    with op.batch_alter_table('certification_events', schema=None) as batch_op:
        batch_op.create_index('ix_certification_events_subject', ['subject_kind', 'subject_id', 'id'], unique=False)

    op.create_table('label_applications',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('gtin', sa.String(length=14), nullable=False),
    sa.Column('applicant_org', sa.String(length=100), nullable=False),
    sa.Column('applicant_sub', sa.String(length=200), nullable=False),
    sa.Column('certification_body', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('inventory_revision', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('label_id', sa.String(length=36), nullable=True),
    sa.CheckConstraint("status IN ('pending','approved','rejected','withdrawn')", name=op.f('ck_label_applications_status_known')),
    sa.ForeignKeyConstraint(['gtin'], ['products.gtin'], name=op.f('fk_label_applications_gtin_products'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_label_applications'))
    )
    with op.batch_alter_table('label_applications', schema=None) as batch_op:
        batch_op.create_index('ix_label_applications_gtin', ['gtin', 'status'], unique=False)
        batch_op.create_index('ix_label_applications_queue', ['status', 'certification_body', 'created_at'], unique=False)

    op.create_table('labels',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('gtin', sa.String(length=14), nullable=False),
    sa.Column('owner_org', sa.String(length=100), nullable=False),
    sa.Column('application_id', sa.String(length=36), nullable=True),
    sa.Column('scheme', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('current', sa.Boolean(), nullable=False),
    sa.Column('category', sa.String(length=100), nullable=False),
    sa.Column('declared_unit', sa.String(length=32), nullable=False),
    sa.Column('kgco2e_per_unit', sa.String(length=64), nullable=False),
    sa.Column('declared_kgco2e_per_unit', sa.String(length=64), nullable=False),
    sa.Column('conservative_basis', sa.String(length=32), nullable=False),
    sa.Column('uncertainty', sa.JSON(), nullable=False),
    sa.Column('gsd', sa.Float(), nullable=True),
    sa.Column('grade', sa.String(length=1), nullable=False),
    sa.Column('benchmark_revision', sa.Integer(), nullable=False),
    sa.Column('certification_body', sa.String(length=100), nullable=True),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('issued_by', sa.String(length=200), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('factor_versions', sa.JSON(), nullable=False),
    sa.Column('inventory_revision', sa.Integer(), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.String(length=200), nullable=True),
    sa.Column('revoked_reason', sa.Text(), nullable=True),
    sa.CheckConstraint("grade IN ('A','B','C','D','E')", name=op.f('ck_labels_grade_known')),
    sa.CheckConstraint("scheme IN ('verified','self_declared')", name=op.f('ck_labels_scheme_known')),
    sa.CheckConstraint("status IN ('active','revoked')", name=op.f('ck_labels_status_known')),
    sa.ForeignKeyConstraint(['gtin'], ['products.gtin'], name=op.f('fk_labels_gtin_products'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_labels'))
    )
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.create_index('ix_labels_category', ['category', 'current'], unique=False)
        batch_op.create_index('uq_labels_current_gtin', ['gtin'], unique=True, sqlite_where=sa.text('current'), postgresql_where=sa.text('current'))

    op.create_table('listings',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('gtin', sa.String(length=14), nullable=False),
    sa.Column('merchant_org', sa.String(length=100), nullable=False),
    sa.Column('store', sa.String(length=200), nullable=False),
    sa.Column('price_cents', sa.BigInteger(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.CheckConstraint('price_cents >= 0', name=op.f('ck_listings_price_non_negative')),
    sa.ForeignKeyConstraint(['gtin'], ['products.gtin'], name=op.f('fk_listings_gtin_products'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_listings'))
    )
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.create_index('ix_listings_gtin', ['gtin'], unique=False)
        batch_op.create_index('uq_listings_offer', ['merchant_org', 'gtin', 'store'], unique=True)



def downgrade() -> None:
    with op.batch_alter_table('listings', schema=None) as batch_op:
        batch_op.drop_index('uq_listings_offer')
        batch_op.drop_index('ix_listings_gtin')

    op.drop_table('listings')
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.drop_index('uq_labels_current_gtin', sqlite_where=sa.text('current'), postgresql_where=sa.text('current'))
        batch_op.drop_index('ix_labels_category')

    op.drop_table('labels')
    with op.batch_alter_table('label_applications', schema=None) as batch_op:
        batch_op.drop_index('ix_label_applications_queue')
        batch_op.drop_index('ix_label_applications_gtin')

    op.drop_table('label_applications')
    with op.batch_alter_table('certification_events', schema=None) as batch_op:
        batch_op.drop_index('ix_certification_events_subject')

    op.drop_table('certification_events')
    op.drop_table('benchmarks')
