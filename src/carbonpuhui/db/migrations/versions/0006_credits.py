"""Credits: the double-entry ledger, claims, trips, receipt keys, rewards, idempotency records.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 13:29:21.223109
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('credit_accounts',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=True),
    sa.Column('balance_g', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('person','merchant','issuance','expiry','forfeit')", name=op.f('ck_credit_accounts_kind_known')),
    sa.CheckConstraint("kind NOT IN ('person','merchant') OR balance_g >= 0", name=op.f('ck_credit_accounts_no_negative_balance')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_accounts')),
    sa.UniqueConstraint('kind', 'owner', name='uq_credit_accounts_owner')
    )
    op.create_table('credit_transfers',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('reference', sa.String(length=36), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('purchase','trip','redemption','expiry','erasure')", name=op.f('ck_credit_transfers_kind_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_transfers'))
    )
    op.create_table('idempotency_keys',
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('route', sa.String(length=100), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('body_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('response', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('owner', 'route', 'key', name=op.f('pk_idempotency_keys'))
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index('ix_idempotency_keys_created', ['created_at'], unique=False)

    op.create_table('receipt_keys',
    sa.Column('kid', sa.String(length=64), nullable=False),
    sa.Column('org', sa.String(length=100), nullable=False),
    sa.Column('kty', sa.String(length=8), nullable=False),
    sa.Column('jwk', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('kid', name=op.f('pk_receipt_keys'))
    )
    with op.batch_alter_table('receipt_keys', schema=None) as batch_op:
        batch_op.create_index('ix_receipt_keys_org', ['org', 'created_at'], unique=False)

    op.create_table('rewards',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('merchant_org', sa.String(length=100), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('cost_g', sa.BigInteger(), nullable=False),
    sa.Column('stock', sa.Integer(), nullable=False),
    sa.Column('redeemed', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.CheckConstraint('cost_g > 0', name=op.f('ck_rewards_cost_positive')),
    sa.CheckConstraint('stock >= 0', name=op.f('ck_rewards_stock_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rewards'))
    )
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.create_index('ix_rewards_created', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_rewards_merchant', ['merchant_org', 'created_at'], unique=False)

    op.create_table('credit_claims',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('issuer', sa.String(length=100), nullable=False),
    sa.Column('jti', sa.String(length=200), nullable=False),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('transfer_id', sa.String(length=36), nullable=True),
    sa.Column('credited_g', sa.BigInteger(), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.JSON(none_as_null=True), nullable=True),
    sa.CheckConstraint("kind IN ('purchase','trip')", name=op.f('ck_credit_claims_kind_known')),
    sa.ForeignKeyConstraint(['account_id'], ['credit_accounts.id'], name=op.f('fk_credit_claims_account_id_credit_accounts')),
    sa.ForeignKeyConstraint(['transfer_id'], ['credit_transfers.id'], name=op.f('fk_credit_claims_transfer_id_credit_transfers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_claims')),
    sa.UniqueConstraint('kind', 'issuer', 'jti', name='uq_credit_claims_natural_key')
    )
    with op.batch_alter_table('credit_claims', schema=None) as batch_op:
        batch_op.create_index('ix_credit_claims_account', ['account_id', 'claimed_at'], unique=False)

    op.create_table('credit_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('transfer_id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('amount_g', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('amount_g <> 0', name=op.f('ck_credit_entries_amount_nonzero')),
    sa.ForeignKeyConstraint(['account_id'], ['credit_accounts.id'], name=op.f('fk_credit_entries_account_id_credit_accounts')),
    sa.ForeignKeyConstraint(['transfer_id'], ['credit_transfers.id'], name=op.f('fk_credit_entries_transfer_id_credit_transfers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credit_entries'))
    )
    with op.batch_alter_table('credit_entries', schema=None) as batch_op:
        batch_op.create_index('ix_credit_entries_account', ['account_id', 'id'], unique=False)
        batch_op.create_index('ix_credit_entries_created', ['created_at'], unique=False)
        batch_op.create_index('ix_credit_entries_transfer', ['transfer_id'], unique=False)

    op.create_table('redemptions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('reward_id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('transfer_id', sa.String(length=36), nullable=False),
    sa.Column('cost_g', sa.BigInteger(), nullable=False),
    sa.Column('redeemed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['credit_accounts.id'], name=op.f('fk_redemptions_account_id_credit_accounts')),
    sa.ForeignKeyConstraint(['reward_id'], ['rewards.id'], name=op.f('fk_redemptions_reward_id_rewards')),
    sa.ForeignKeyConstraint(['transfer_id'], ['credit_transfers.id'], name=op.f('fk_redemptions_transfer_id_credit_transfers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_redemptions'))
    )
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.create_index('ix_redemptions_account', ['account_id', 'redeemed_at'], unique=False)

    op.create_table('credit_trips',
    sa.Column('claim_id', sa.String(length=36), nullable=False),
    sa.Column('account_id', sa.String(length=36), nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('distance_km', sa.String(length=64), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('attested_by', sa.String(length=100), nullable=True),
    sa.Column('credited_g', sa.BigInteger(), nullable=False),
    sa.Column('capped', sa.Boolean(), nullable=False),
    sa.Column('methodology_version', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['credit_accounts.id'], name=op.f('fk_credit_trips_account_id_credit_accounts')),
    sa.ForeignKeyConstraint(['claim_id'], ['credit_claims.id'], name=op.f('fk_credit_trips_claim_id_credit_claims')),
    sa.PrimaryKeyConstraint('claim_id', name=op.f('pk_credit_trips'))
    )
    with op.batch_alter_table('credit_trips', schema=None) as batch_op:
        batch_op.create_index('ix_credit_trips_account', ['account_id', 'started_at'], unique=False)
        batch_op.create_index('ix_credit_trips_day', ['account_id', 'day'], unique=False)


    if op.get_bind().dialect.name == "postgresql":
        # The ledger is append-only in the database itself, not only by convention: corrections are
        # new transfers. (TRUNCATE, an operator's deliberate act, does not fire row triggers.)
        op.execute("""
            CREATE FUNCTION credit_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'the credit ledger is append-only: % on % refused', TG_OP, TG_TABLE_NAME
                    USING ERRCODE = 'integrity_constraint_violation';
            END $$""")
        for table in ("credit_entries", "credit_transfers"):
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION credit_ledger_append_only()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("credit_entries", "credit_transfers"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute("DROP FUNCTION IF EXISTS credit_ledger_append_only()")
    with op.batch_alter_table('credit_trips', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_trips_day')
        batch_op.drop_index('ix_credit_trips_account')

    op.drop_table('credit_trips')
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.drop_index('ix_redemptions_account')

    op.drop_table('redemptions')
    with op.batch_alter_table('credit_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_entries_transfer')
        batch_op.drop_index('ix_credit_entries_created')
        batch_op.drop_index('ix_credit_entries_account')

    op.drop_table('credit_entries')
    with op.batch_alter_table('credit_claims', schema=None) as batch_op:
        batch_op.drop_index('ix_credit_claims_account')

    op.drop_table('credit_claims')
    with op.batch_alter_table('rewards', schema=None) as batch_op:
        batch_op.drop_index('ix_rewards_merchant')
        batch_op.drop_index('ix_rewards_created')

    op.drop_table('rewards')
    with op.batch_alter_table('receipt_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_receipt_keys_org')

    op.drop_table('receipt_keys')
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_idempotency_keys_created')

    op.drop_table('idempotency_keys')
    op.drop_table('credit_transfers')
    op.drop_table('credit_accounts')
