"""Every model, imported in one place so migrations and tests see the whole schema."""

from carbonpuhui.db.base import Base
from carbonpuhui.factors.models import FactorVersion
from carbonpuhui.footprints.models import InventoryLine, Product, ProductVerifier

metadata = Base.metadata

__all__ = ["FactorVersion", "InventoryLine", "Product", "ProductVerifier", "metadata"]
