"""Products, their inventories and assigned verifiers (issue: product footprints).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 08:24:50.451466
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('products',
    sa.Column('gtin', sa.String(length=14), nullable=False),
    sa.Column('owner_org', sa.String(length=100), nullable=False),
    sa.Column('names', sa.JSON(), nullable=False),
    sa.Column('category', sa.String(length=100), nullable=False),
    sa.Column('declared_unit', sa.String(length=32), nullable=False),
    sa.Column('declared_units_per_item', sa.String(length=64), nullable=False),
    sa.Column('region', sa.String(length=10), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('inventory_revision', sa.Integer(), nullable=False),
    sa.Column('inventory_updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('inventory_updated_by', sa.String(length=200), nullable=True),
    sa.Column('reference_period_start', sa.Date(), nullable=True),
    sa.Column('reference_period_end', sa.Date(), nullable=True),
    sa.CheckConstraint('length(gtin) = 14', name=op.f('ck_products_gtin14')),
    sa.PrimaryKeyConstraint('gtin', name=op.f('pk_products'))
    )
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.create_index('ix_products_category', ['category'], unique=False)
        batch_op.create_index('ix_products_owner', ['owner_org', 'gtin'], unique=False)

    op.create_table('inventory_lines',
    sa.Column('gtin', sa.String(length=14), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('quantity', sa.String(length=64), nullable=False),
    sa.Column('unit', sa.String(length=32), nullable=False),
    sa.Column('factor_id', sa.String(length=100), nullable=True),
    sa.Column('factor_version', sa.Integer(), nullable=True),
    sa.Column('version_requested', sa.Boolean(), nullable=False),
    sa.Column('factor_category', sa.String(length=100), nullable=True),
    sa.Column('direct_kgco2e', sa.String(length=64), nullable=True),
    sa.Column('primary', sa.Boolean(), nullable=False),
    sa.Column('activity_uncertainty', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('data_quality', sa.JSON(none_as_null=True), nullable=True),
    sa.CheckConstraint("stage IN ('raw_materials','production','distribution','use','end_of_life')", name=op.f('ck_inventory_lines_stage_known')),
    sa.CheckConstraint('(factor_id IS NULL) <> (direct_kgco2e IS NULL)', name=op.f('ck_inventory_lines_factor_or_direct')),
    sa.CheckConstraint('(factor_id IS NULL) = (factor_version IS NULL)', name=op.f('ck_inventory_lines_factor_pinned')),
    sa.ForeignKeyConstraint(['gtin'], ['products.gtin'], name=op.f('fk_inventory_lines_gtin_products'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('gtin', 'position', name=op.f('pk_inventory_lines'))
    )
    op.create_table('product_verifiers',
    sa.Column('gtin', sa.String(length=14), nullable=False),
    sa.Column('body_org', sa.String(length=100), nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('assigned_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['gtin'], ['products.gtin'], name=op.f('fk_product_verifiers_gtin_products'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('gtin', 'body_org', name=op.f('pk_product_verifiers'))
    )


def downgrade() -> None:
    op.drop_table('product_verifiers')
    op.drop_table('inventory_lines')
    with op.batch_alter_table('products', schema=None) as batch_op:
        batch_op.drop_index('ix_products_owner')
        batch_op.drop_index('ix_products_category')

    op.drop_table('products')
