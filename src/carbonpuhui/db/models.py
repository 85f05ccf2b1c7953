"""Every model, imported in one place so migrations and tests see the whole schema."""

from carbonpuhui.db.base import Base
from carbonpuhui.factors.models import FactorVersion

metadata = Base.metadata

__all__ = ["FactorVersion", "metadata"]
