"""Database: SQLAlchemy 2 async engine and sessions; the schema comes only from Alembic migrations."""

from carbonpuhui.db.base import Base
from carbonpuhui.db.engine import Database

__all__ = ["Base", "Database"]
