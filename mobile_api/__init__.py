"""HTTP surface for consumers and merchants (a Litestar plugin)."""

from mobile_api.plugin import MobileAPIPlugin

__all__ = ["MobileAPIPlugin"]
