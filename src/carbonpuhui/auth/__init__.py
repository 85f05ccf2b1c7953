"""Authentication (OAuth 2.0 bearer JWTs, RFC 9068) and role-based access declarations."""

from carbonpuhui.auth.access import ROLES, Principal, access, current_principal
from carbonpuhui.auth.tokens import TokenValidator, mint_token

__all__ = ["ROLES", "Principal", "TokenValidator", "access", "current_principal", "mint_token"]
