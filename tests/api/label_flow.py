"""Helpers the label tests share: products with a known footprint, benchmarks, the certification flow."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tests.api.test_products import create_factor, create_product, line, put_inventory, with_check_digit

CATEGORY = "steel.hot_rolled_coil"
BODY = "cb-sgs"  # a certification body
OTHER_BODY = "cb-cqc"
OWNER = "acme"
NEXT_YEAR = (date.today() + timedelta(days=365)).isoformat()


def gtin(n: int) -> str:
    """The n-th test GTIN-13 (valid check digit)."""
    return with_check_digit(f"690{n:09d}")


def gtin14(n: int) -> str:
    return "0" + gtin(n)


class Flow:
    """The platform's actors on one test client."""

    def __init__(self, client, auth) -> None:
        self.client = client
        self.admin = auth("admin", sub="root")
        self.owner = auth("merchant", org=OWNER, sub="alice")
        self.rival = auth("merchant", org="rival", sub="rita")
        self.verifier = auth("verifier", org=BODY, sub="vera")
        self.other_verifier = auth("verifier", org=OTHER_BODY, sub="otto")

    def ok(self, response, status: int = 200) -> dict[str, Any]:
        assert response.status_code == status, response.text
        return response.json()

    def product(self, n: int, kgco2e: str, *, headers=None, category: str = CATEGORY, unit: str = "kilogram",
                lines: list[dict[str, Any]] | None = None) -> str:
        """A product whose whole footprint is one direct line of ``kgco2e`` (no uncertainty data)."""
        code = gtin(n)
        create_product(self.client, headers or self.owner, code, category=category, declared_unit=unit)
        body = lines or [line("production", "measured", "1", "kg", direct_kgco2e=kgco2e)]
        assert put_inventory(self.client, headers or self.owner, body, gtin=code).status_code == 200
        return code

    def uncertain_product(self, n: int, median: str, gsd: float, factor_id: str | None = None) -> str:
        """One line of a lognormal factor (median ``median``, ``gsd``) x 1 kWh."""
        factor_id = factor_id or f"grid-{n}"
        create_factor(self.client, self.admin, factor_id, category=f"electricity.test_{n}", unit="kWh", value=median,
                      uncertainty={"distribution": "lognormal", "gsd": gsd})
        return self.product(n, "0", lines=[line("production", "power", "1", "kWh", factor_id=factor_id)])

    def benchmark(self, thresholds: list[str], baseline: str = "50", *, category: str = CATEGORY,
                  **extra: Any) -> dict[str, Any]:
        body = {"method": "fixed", "thresholds": thresholds, "baseline": baseline, "declared_unit": "kilogram",
                **extra}
        return self.ok(self.client.put(f"/v1/benchmarks/{category}", json=body, headers=self.admin))

    def apply(self, code: str, body: str | None = BODY, headers=None) -> dict[str, Any]:
        return self.ok(self.client.post(f"/v1/merchant/products/{code}/label-applications",
                                        json={"certification_body": body}, headers=headers or self.owner), 201)

    def decide(self, application_id: str, decision: str = "approve", headers=None, **extra: Any):
        body: dict[str, Any] = {"decision": decision, "comment": "checked on site", **extra}
        if decision == "approve":
            body.setdefault("valid_until", NEXT_YEAR)
        return self.client.post(f"/v1/certification/applications/{application_id}/decision", json=body,
                                headers=headers or self.verifier)

    def certify(self, code: str, **extra: Any) -> dict[str, Any]:
        """Apply and approve: the issued label."""
        application = self.apply(code)
        return self.ok(self.decide(application["id"], **extra))["label"]

    def public(self, code: str, **headers: str) -> dict[str, Any]:
        return self.ok(self.client.get(f"/v1/products/{code}", headers=headers))

    def listing(self, code: str, store: str = "Jinan store", price: int = 1999, headers=None) -> dict[str, Any]:
        return self.ok(self.client.post("/v1/merchant/listings", json={"gtin": code, "store": store,
                                                                       "price_cents": price},
                                        headers=headers or self.owner), 201)
