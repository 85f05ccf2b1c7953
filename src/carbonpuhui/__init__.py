"""carbonpuhui: the provincial product-carbon-footprint and carbon-inclusive (碳普惠) platform."""

__version__ = "0.1.0"
