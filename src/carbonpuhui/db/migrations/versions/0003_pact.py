"""PACT data exchange: clients, published footprints and their shares, received events.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 08:33:37.573168
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('pact_clients',
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('org', sa.String(length=100), nullable=False),
    sa.Column('secret_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('callback_base_url', sa.String(length=500), nullable=True),
    sa.Column('callback_client_id', sa.String(length=200), nullable=True),
    sa.Column('callback_client_secret', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('client_id', name=op.f('pk_pact_clients'))
    )
    op.create_table('pact_events',
    sa.Column('seq', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.String(length=200), nullable=False),
    sa.Column('type', sa.String(length=200), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('answer', sa.JSON(none_as_null=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivery_error', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_pact_events')),
    sa.UniqueConstraint('client_id', 'event_id', name='client_event')
    )
    op.create_table('pact_footprints',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('gtin', sa.String(length=14), nullable=False),
    sa.Column('owner_org', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('public', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('document', sa.JSON(), nullable=False),
    sa.CheckConstraint("status IN ('Active','Deprecated')", name=op.f('ck_pact_footprints_status_known')),
    sa.ForeignKeyConstraint(['gtin'], ['products.gtin'], name=op.f('fk_pact_footprints_gtin_products'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pact_footprints'))
    )
    with op.batch_alter_table('pact_footprints', schema=None) as batch_op:
        batch_op.create_index('ix_pact_footprints_gtin', ['gtin', 'status'], unique=False)
        batch_op.create_index('ix_pact_footprints_owner', ['owner_org', 'created_at'], unique=False)

    op.create_table('pact_shares',
    sa.Column('footprint_id', sa.String(length=36), nullable=False),
    sa.Column('org', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['footprint_id'], ['pact_footprints.id'], name=op.f('fk_pact_shares_footprint_id_pact_footprints'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('footprint_id', 'org', name=op.f('pk_pact_shares'))
    )


def downgrade() -> None:
    op.drop_table('pact_shares')
    with op.batch_alter_table('pact_footprints', schema=None) as batch_op:
        batch_op.drop_index('ix_pact_footprints_owner')
        batch_op.drop_index('ix_pact_footprints_gtin')

    op.drop_table('pact_footprints')
    op.drop_table('pact_events')
    op.drop_table('pact_clients')
