"""Named dependencies that handlers declare (provided by the platform plugin in ``app.py``)."""

from __future__ import annotations

from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from carbonpuhui.auth.access import Principal

DbSession = NamedDependency[AsyncSession]  # the request's unit of work; committed by the platform
CurrentPrincipal = NamedDependency[Principal]  # on guarded routes: never None
MaybePrincipal = NamedDependency[Principal | None]  # on public routes: the caller, if they sent a token
