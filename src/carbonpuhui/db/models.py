"""Every model, imported in one place so migrations and tests see the whole schema."""

from carbonpuhui.credits.models import (
    Account,
    Claim,
    Entry,
    IdempotencyRecord,
    ReceiptKey,
    Redemption,
    Reward,
    Transfer,
    Trip,
)
from carbonpuhui.db.base import Base
from carbonpuhui.factors.models import FactorVersion
from carbonpuhui.footprints.models import InventoryLine, Product, ProductVerifier
from carbonpuhui.labels.models import Benchmark, CertificationEvent, Label, LabelApplication, Listing
from carbonpuhui.pact.models import PactClient, PactEvent, PactFootprint, PactShare
from carbonpuhui.stats.models import ExportShipment, Organisation, Site, StatReport
from procurement.models import Bid, Tender, TenderEvaluation

metadata = Base.metadata

__all__ = ["Account", "Benchmark", "Claim", "Entry", "IdempotencyRecord", "ReceiptKey", "Redemption", "Reward",
           "Transfer", "Trip", "Bid", "CertificationEvent", "FactorVersion", "InventoryLine", "Label", "LabelApplication",
           "Listing", "Product", "PactClient", "PactEvent", "PactFootprint", "PactShare",
           "ProductVerifier", "Tender", "TenderEvaluation", "ExportShipment", "Organisation", "Site",
           "StatReport", "metadata"]
