"""Schemathesis over the served schema once per caller: each role alone, and nobody.

``test_fuzz.py`` fuzzes as an admin, so most merchant, consumer, verifier and officer handlers
answer 403 there before their own code runs. Here every operation is called with a token of each
role (its ``org`` set, so organisation-scoped services run) and anonymously, a few examples each,
and every answer must be documented: no 5xx, a status code and content type the operation lists,
and a body that matches the documented schema.

A role the route's guard refuses gets the same 403 whatever it sends, before any handler runs
(``test_role_matrix.py`` checks that for every role): one refused role stands for all of them, so
the budget goes to the callers whose requests reach the handlers.

``CARBONPUHUI_FUZZ_EXAMPLES`` sets the examples per operation and caller (default 3).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from carbonpuhui.app import create_app
from carbonpuhui.auth.access import AUTHENTICATED, PACT_CLIENT, PUBLIC, ROLES
from carbonpuhui.auth.tokens import mint_token
from tests.api import test_fuzz
from tests.api.test_role_matrix import handlers
from tests.conftest import _empty_tables

EXAMPLES = int(os.environ.get("CARBONPUHUI_FUZZ_EXAMPLES", "3"))
CALLERS = (*ROLES, "anonymous")

target = test_fuzz._CurrentApp()
# The same served document test_fuzz.py read at import (no second app start), its own budget.
schema = schemathesis.openapi.from_dict(test_fuzz.schema.raw_schema, config=schemathesis.Config.from_dict({
    "generation": {"max-examples": EXAMPLES, "deterministic": True, "mode": "all"},
    "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
}))
schema.app = target


def _runs_for(access: object, caller: str) -> bool:
    """Whether ``caller`` is fuzzed on a route with this access rule (see the module docstring)."""
    if caller == "anonymous" or access in (PUBLIC, AUTHENTICATED):
        return True
    allowed = () if access == PACT_CLIENT else tuple(access)  # type: ignore[arg-type]
    refused = [role for role in ROLES if role not in allowed]
    return caller in allowed or caller == refused[0]


@pytest.fixture(scope="module")
def access_rules(fuzz_settings) -> dict[tuple[str, str], object]:  # type: ignore[no-untyped-def]
    assert target.app is not None
    return {(method, path): handler.opt["access"] for method, path, handler in handlers(target.app)}


@pytest.fixture(scope="module")
def fuzz_settings(tmp_path_factory: pytest.TempPathFactory, migrated_database_url: str) -> Iterator[object]:
    s = test_fuzz._fuzz_settings(tmp_path_factory, migrated_database_url)
    target.app = create_app(s)
    yield s
    # As in test_fuzz.py: stop the lifespans while the database still exists, then empty it.
    schemathesis.python.asgi.shutdown_lifespans()
    target.app = None
    _empty_tables(migrated_database_url)


@pytest.fixture(scope="module", params=CALLERS)
def caller(request: pytest.FixtureRequest, fuzz_settings) -> tuple[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    if request.param == "anonymous":
        return request.param, {}
    s = fuzz_settings
    token = mint_token(s.key_path, issuer=s.token_issuer, audience=s.token_audience, sub=f"fuzz-{request.param}",
                       roles=[request.param], org=f"fuzz-{request.param}-org", ttl=3600)
    return request.param, {"Authorization": f"Bearer {token}"}


@schema.parametrize()
def test_every_caller_gets_only_documented_answers(case: schemathesis.Case, caller: tuple[str, dict[str, str]],
                                                   access_rules: dict[tuple[str, str], object]) -> None:
    name, headers = caller
    access = access_rules[(case.operation.method.upper(), case.operation.path)]
    if not _runs_for(access, name):
        pytest.skip(f"the guard refuses {name} before any handler runs, as it does the first refused role")
    case.call_and_validate(headers=headers, checks=[
        not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance])
