"""Export shipments over HTTP: normalisation, all-or-nothing batches by JSON and CSV (errors name
``items[i].field``, or the line and column), other organisations' products reading as unknown, the
exporter's own list, and withdrawing a batch."""

from __future__ import annotations

import codecs
from datetime import UTC, datetime
from typing import Any

import pytest

from carbonpuhui.stats.quarters import Quarter
from tests.api.test_products import create_product, with_check_digit

NOW = Quarter.of(datetime.now(UTC))
LAST = NOW.previous()
MINE = [with_check_digit(f"69012345670{i}") for i in range(3)]
THEIRS = with_check_digit("692345678901")
HEADER = "quarter,gtin,hs_code,destination,quantity,value_cents"


@pytest.fixture
def exporter(client, auth) -> dict[str, str]:
    headers = auth("merchant", org="acme", sub="acme-user")
    for gtin in MINE:
        create_product(client, headers, gtin)
    create_product(client, auth("merchant", org="rival"), THEIRS)
    return headers


def item(gtin: str = MINE[0], **overrides: Any) -> dict[str, Any]:
    return {"quarter": str(LAST), "gtin": gtin, "hs_code": "7208.51", "destination": "DE", "quantity": "12.5",
            "value_cents": 123_456, **overrides}


def listed(client, headers, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/v1/merchant/export-shipments", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def problems(response) -> list[tuple[Any, Any]]:
    assert response.status_code == 422, response.text
    return [(e.get("line"), e["field"]) for e in response.json()["errors"]]


def test_a_batch_is_stored_normalised(client, exporter) -> None:
    body = {"items": [item(), item(MINE[1], hs_code="4011 10 00 00", destination="hk", quantity=3,
                                   quarter=str(NOW), value_cents=0),
                      item("0" + MINE[2], hs_code="720851")]}
    response = client.post("/v1/merchant/export-shipments", json=body, headers=exporter)
    assert response.status_code == 201, response.text
    batch = response.json()
    assert batch["count"] == 3
    rows = listed(client, exporter)
    assert {r["batch_id"] for r in rows} == {batch["batch_id"]}
    by_gtin = {r["gtin"]: r for r in rows}
    assert set(by_gtin) == {"0" + g for g in MINE}
    first = by_gtin["0" + MINE[0]]
    assert (first["hs_code"], first["destination"], first["quantity"], first["value_cents"]) == (
        "720851", "DE", "12.5", 123_456)
    second = by_gtin["0" + MINE[1]]
    assert (second["hs_code"], second["destination"], second["quantity"], second["quarter"]) == (
        "4011100000", "HK", "3", str(NOW))
    assert [r["gtin"] for r in listed(client, exporter, quarter=str(NOW))] == ["0" + MINE[1]]


def test_one_bad_item_rejects_the_batch(client, exporter) -> None:
    body = {"items": [
        item(),
        item(MINE[0][:-1] + str((int(MINE[0][-1]) + 1) % 10)),  # wrong check digit
        item(destination="XX"),  # no such country
        item(destination="CN"),  # not an export
        item(quarter=str(NOW.next())),  # a future quarter
        item(hs_code="72.08"),  # too short
        item(hs_code="7708.51"),  # chapter 77 is reserved
        item(quantity="0"),
        item(quarter="2025Q5"),
    ]}
    response = client.post("/v1/merchant/export-shipments", json=body, headers=exporter)
    assert problems(response) == [(None, "items[1].gtin"), (None, "items[2].destination"),
                                  (None, "items[3].destination"), (None, "items[4].quarter"),
                                  (None, "items[5].hs_code"), (None, "items[6].hs_code"),
                                  (None, "items[7].quantity"), (None, "items[8].quarter")]
    assert response.json()["reason"] == "shipments_invalid" and response.json()["errors_total"] == 8
    assert listed(client, exporter) == []
    # A schema violation anywhere (a negative value) is a 422 naming the item too, and stores nothing.
    response = client.post("/v1/merchant/export-shipments", json={"items": [item(), item(value_cents=-1)]},
                           headers=exporter)
    assert problems(response) == [(None, "items[1].value_cents")]
    assert listed(client, exporter) == []


def test_other_organisations_products_read_as_unknown(client, exporter) -> None:
    unknown = with_check_digit("400000000000")
    response = client.post("/v1/merchant/export-shipments", json={"items": [item(THEIRS), item(unknown)]},
                           headers=exporter)
    assert problems(response) == [(None, "items[0].gtin"), (None, "items[1].gtin")]
    first, second = response.json()["errors"]
    assert first["message"] == second["message"]  # nothing tells a rival's product from no product
    assert listed(client, exporter) == []


def test_csv_import_with_bom_and_line_and_column_errors(client, exporter) -> None:
    rows = [f"{LAST},{MINE[0]},7208.51,DE,12.5,100", "", f"{LAST},{MINE[1]},720851,US,2,200"]
    data = codecs.BOM_UTF8 + "\r\n".join([HEADER, *rows, ""]).encode()
    response = client.post("/v1/merchant/export-shipments/import", content=data,
                           headers={**exporter, "Content-Type": "text/csv; charset=utf-8"})
    assert response.status_code == 201, response.text
    assert response.json()["count"] == 2
    assert sorted(r["destination"] for r in listed(client, exporter)) == ["DE", "US"]

    bad = "\n".join([HEADER, f"{LAST},{MINE[0]},7208.51,DE,12.5,100",  # line 2: fine
                     f"{LAST},{THEIRS},7208.51,DE,1,1",  # line 3: not ours
                     f"{LAST},{MINE[0]},7208.51,DE,abc,1",  # line 4: not a number
                     f"{LAST},{MINE[0]},7208.51,ZZ,1,",  # line 5: no value (the row does not parse)
                     f"{LAST},{MINE[0]},7208.51,DE,1,1,extra"])  # line 6: a cell too many
    response = client.post("/v1/merchant/export-shipments/import", content=bad.encode(),
                           headers={**exporter, "Content-Type": "text/csv"})
    assert problems(response) == [(3, "gtin"), (4, "quantity"), (5, "value_cents"), (6, None)]
    assert response.json()["errors_total"] == 4
    assert len(listed(client, exporter)) == 2  # the rejected file added nothing


def test_csv_file_level_refusals(client, exporter) -> None:
    csv_headers = {**exporter, "Content-Type": "text/csv"}
    missing = client.post("/v1/merchant/export-shipments/import", content=b"quarter,gtin\n2025Q1,1\n",
                          headers=csv_headers)
    assert problems(missing) == [(1, None)]
    assert "destination, hs_code, quantity, value_cents" in missing.json()["errors"][0]["message"]
    empty = client.post("/v1/merchant/export-shipments/import", content=(HEADER + "\n").encode(), headers=csv_headers)
    assert empty.status_code == 422 and empty.json()["reason"] == "no_items"
    latin = client.post("/v1/merchant/export-shipments/import", content="quarter,gtin,é\n".encode("latin-1"),
                        headers=csv_headers)
    assert problems(latin) == [(1, None)]
    wrong_type = client.post("/v1/merchant/export-shipments/import", content=b"{}",
                             headers={**exporter, "Content-Type": "application/json"})
    assert wrong_type.status_code == 415
    huge = client.post("/v1/merchant/export-shipments/import", content=b"x" * (4 * 1024 * 1024 + 1),
                       headers=csv_headers)
    assert huge.status_code == 413


def test_item_limit(client, exporter) -> None:
    response = client.post("/v1/merchant/export-shipments", json={"items": [item()] * 10_001}, headers=exporter)
    assert response.status_code == 422
    assert listed(client, exporter) == []


def test_own_rows_only_paging_and_withdrawal(client, auth, exporter) -> None:
    first = client.post("/v1/merchant/export-shipments", json={"items": [item(), item(quantity="2")]},
                        headers=exporter).json()
    second = client.post("/v1/merchant/export-shipments", json={"items": [item(MINE[1], quarter=str(NOW))] * 3},
                         headers=exporter).json()
    rival = auth("merchant", org="rival")
    theirs = client.post("/v1/merchant/export-shipments", json={"items": [item(THEIRS)]}, headers=rival)
    assert theirs.status_code == 201
    seen, cursor = [], None
    while True:
        page = client.get("/v1/merchant/export-shipments", headers=exporter,
                          params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen += page["items"]
        if (cursor := page["next_cursor"]) is None:
            break
    assert len(seen) == 5 and len({r["id"] for r in seen}) == 5
    assert [r["quarter"] for r in seen] == sorted(r["quarter"] for r in seen)
    assert {r["batch_id"] for r in seen} == {first["batch_id"], second["batch_id"]}
    assert len(listed(client, exporter, batch_id=second["batch_id"])) == 3
    # Withdrawing: another organisation's batch is a 404 and stays; one's own goes whole.
    gone = client.delete(f"/v1/merchant/export-shipments/batches/{theirs.json()['batch_id']}", headers=exporter)
    assert gone.status_code == 404
    assert len(listed(client, rival)) == 1
    withdrawn = client.delete(f"/v1/merchant/export-shipments/batches/{first['batch_id']}", headers=exporter)
    assert withdrawn.status_code == 200 and withdrawn.json()["deleted"] == 2
    assert {r["batch_id"] for r in listed(client, exporter)} == {second["batch_id"]}
    again = client.delete(f"/v1/merchant/export-shipments/batches/{first['batch_id']}", headers=exporter)
    assert again.status_code == 404
    assert problems(client.get("/v1/merchant/export-shipments", params={"quarter": "2025Q9"},
                               headers=exporter)) == [(None, "quarter")]
    assert client.get("/v1/merchant/export-shipments", params={"cursor": "bad!"}, headers=exporter).status_code == 400
    # A merchant token without an organisation declares nothing.
    assert client.post("/v1/merchant/export-shipments", json={"items": [item()]},
                       headers=auth("merchant")).status_code == 403
