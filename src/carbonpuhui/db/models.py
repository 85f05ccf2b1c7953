"""Every model, imported in one place so migrations and tests see the whole schema."""

from carbonpuhui.db.base import Base
from carbonpuhui.factors.models import FactorVersion
from carbonpuhui.footprints.models import InventoryLine, Product, ProductVerifier
from carbonpuhui.pact.models import PactClient, PactEvent, PactFootprint, PactShare

metadata = Base.metadata

__all__ = ["FactorVersion", "InventoryLine", "Product", "PactClient", "PactEvent", "PactFootprint", "PactShare",
           "ProductVerifier", "metadata"]
