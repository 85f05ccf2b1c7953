"""Helpers the credit tests share: labelled products, merchants' signing keys, signed receipts and
attestations, consumers."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from carbonpuhui.credits.signing import generate_private_jwk, sign
from tests.api.label_flow import CATEGORY, Flow, gtin
from tests.api.test_products import create_product, line, put_inventory

SHOP = "shop"
OPERATOR = "metro-op"


def public_part(private_jwk: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in private_jwk.items() if k != "d"}


class Signer:
    """A point-of-sale (or a transit operator's system) with a registered key."""

    def __init__(self, org: str, private_jwk: dict[str, Any], kid: str) -> None:
        self.org, self.private_jwk, self.kid = org, private_jwk, kid

    def receipt(self, items: list[dict[str, Any]], *, jti: str | None = None, iat: float | None = None,
                iss: str | None = None, **extra: Any) -> str:
        claims = {"iss": iss or self.org, "jti": jti or uuid.uuid4().hex, "iat": int(time.time() if iat is None else iat),
                  "items": items, **extra}
        return sign(claims, self.private_jwk, self.kid)

    def attestation(self, sub: str, trip: dict[str, Any], *, jti: str | None = None, **extra: Any) -> str:
        claims = {"iss": self.org, "jti": jti or uuid.uuid4().hex, "sub": sub, "mode": trip["mode"],
                  "distance_km": trip["distance_km"], "started_at": trip["started_at"],
                  "ended_at": trip["ended_at"], **extra}
        return sign(claims, self.private_jwk, self.kid)


def trip_body(mode: str = "walk", km: str = "2", minutes: float = 30, *, ago: timedelta = timedelta(hours=2),
              start: datetime | None = None, **extra: Any) -> dict[str, Any]:
    started = start or datetime.now(UTC).replace(microsecond=0) - ago
    ended = started + timedelta(minutes=minutes)
    return {"mode": mode, "distance_km": km, "started_at": started.isoformat().replace("+00:00", "Z"),
            "ended_at": ended.isoformat().replace("+00:00", "Z"), **extra}


class CreditFlow(Flow):
    def __init__(self, client, auth) -> None:
        super().__init__(client, auth)
        self.auth = auth
        self.shop = auth("merchant", org=SHOP, sub="sam")
        self.operator = auth("merchant", org=OPERATOR, sub="olga")

    def consumer(self, sub: str) -> dict[str, str]:
        return self.auth("consumer", sub=sub)

    def register(self, headers: dict[str, str] | None = None, org: str = SHOP, kty: str = "OKP") -> Signer:
        private = generate_private_jwk(kty)
        out = self.ok(self.client.post("/v1/merchant/receipt-keys", json={"jwk": public_part(private)},
                                       headers=headers or self.shop), 201)
        return Signer(org, private, out["kid"])

    def labelled(self, n: int, kgco2e: str, *, per_item: str = "1", category: str = CATEGORY,
                 verified: bool = True) -> str:
        """A product with a label of ``kgco2e`` per kilogram (no uncertainty: a zero penalty keeps it
        exact), ``per_item`` kilograms per item."""
        code = gtin(n)
        create_product(self.client, self.owner, code, category=category, declared_unit="kilogram",
                       declared_units_per_item=per_item)
        body = [line("production", "measured", "1", "kg", direct_kgco2e=kgco2e)]
        assert put_inventory(self.client, self.owner, body, gtin=code).status_code == 200
        if verified:
            self.certify(code)
        else:
            self.ok(self.client.post(f"/v1/merchant/products/{code}/self-declared-label", json={
                "valid_until": (datetime.now(UTC) + timedelta(days=300)).date().isoformat()}, headers=self.owner),
                201)
        return code

    def claim(self, headers: dict[str, str], receipt: str, key: str | None = None):
        extra = {"Idempotency-Key": key} if key else {}
        return self.client.post("/v1/credits/purchases", json={"receipt": receipt}, headers={**headers, **extra})

    def trip(self, headers: dict[str, str], body: dict[str, Any], key: str | None = None):
        extra = {"Idempotency-Key": key} if key else {}
        return self.client.post("/v1/credits/trips", json=body, headers={**headers, **extra})

    def wallet(self, headers: dict[str, str]) -> dict[str, Any]:
        return self.ok(self.client.get("/v1/wallet", headers=headers))

    def reward(self, cost: int, stock: int, headers: dict[str, str] | None = None, title: str = "Tote bag") -> str:
        return self.ok(self.client.post("/v1/merchant/rewards", json={"title": title, "cost_g": cost, "stock": stock},
                                        headers=headers or self.shop), 201)["id"]

    def redeem(self, headers: dict[str, str], reward_id: str, key: str | None = None):
        extra = {"Idempotency-Key": key} if key else {}
        return self.client.post("/v1/wallet/redemptions", json={"reward_id": reward_id}, headers={**headers, **extra})
