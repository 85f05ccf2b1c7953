"""POST /v1/factors/import: CSV and JSON, all-or-nothing, idempotent, line numbers in errors."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

COLUMNS = ["id", "names.zh-Hans", "names.zh-Hant", "names.en", "category", "unit", "kgco2e_per_unit",
           "gwp_basis", "region", "tier", "valid_from", "valid_to", "source", "uncertainty.distribution",
           "uncertainty.gsd", "supplements"]


def row(factor_id: str, **overrides: str) -> dict[str, str]:
    base = {
        "id": factor_id, "names.zh-Hans": "电网", "names.zh-Hant": "電網", "names.en": "Grid",
        "category": "electricity.grid", "unit": "kWh", "kgco2e_per_unit": "0.5366", "gwp_basis": "AR5",
        "region": "CN", "tier": "national", "valid_from": "2022-01-01", "valid_to": "", "source": "MEE 2024",
        "uncertainty.distribution": "lognormal", "uncertainty.gsd": "1.05", "supplements": "",
    }
    base.update(overrides)
    return base


def to_csv(rows: list[dict[str, str]], columns: list[str] = COLUMNS, lineterminator: str = "\n") -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator=lineterminator, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def as_json(r: dict[str, str]) -> dict[str, Any]:
    """The JSON body equal to a CSV row."""
    body: dict[str, Any] = {
        "id": r["id"], "names": {"zh-Hans": r["names.zh-Hans"], "zh-Hant": r["names.zh-Hant"], "en": r["names.en"]},
        "category": r["category"], "unit": r["unit"], "kgco2e_per_unit": r["kgco2e_per_unit"],
        "gwp_basis": r["gwp_basis"], "region": r["region"], "tier": r["tier"], "valid_from": r["valid_from"],
        "source": r["source"], "uncertainty": {"distribution": "lognormal", "gsd": float(r["uncertainty.gsd"])},
    }
    if r["valid_to"]:
        body["valid_to"] = r["valid_to"]
    if r["supplements"]:
        body["supplements"] = r["supplements"]
    return body


def post(client, headers, data: bytes, media_type: str, **params: Any):
    return client.post("/v1/factors/import", content=data, params=params,
                       headers={**headers, "Content-Type": media_type})


def published_count(client, headers) -> int:
    return len(client.get("/v1/factors", params={"limit": 200}, headers=headers).json()["items"])


def stored_versions(client, headers, factor_id: str) -> list[tuple[int, str]]:
    response = client.get(f"/v1/factors/{factor_id}/versions", headers=headers)
    if response.status_code == 404:
        return []
    return [(v["version"], v["status"]) for v in response.json()["items"]]


def bad_lines(response) -> set[int]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["reason"] == "import_invalid"
    assert all(e["message"] for e in body["errors"])
    return {e["line"] for e in body["errors"]}


GOOD = [row("imp-a"), row("imp-b", kgco2e_per_unit="0.5306", valid_from="2023-01-01"),
        row("imp-c", tier="provincial", region="CN-SD", kgco2e_per_unit="0.6361", supplements="imp-a")]


def test_csv_import_is_idempotent_and_publishes_on_request(client, auth):
    admin = auth("admin")
    data = to_csv(GOOD)
    first = post(client, admin, data, "text/csv")
    assert first.status_code == 200, first.text
    assert first.json() == {"created": 3, "unchanged": 0, "published": 0}
    assert published_count(client, admin) == 0  # drafts
    assert stored_versions(client, admin, "imp-a") == [(1, "draft")]

    again = post(client, admin, data, "text/csv")
    assert again.json() == {"created": 0, "unchanged": 3, "published": 0}
    assert stored_versions(client, admin, "imp-a") == [(1, "draft")]

    # The drafts from the first import get published, not duplicated.
    publish = post(client, admin, data, "text/csv; charset=utf-8", publish="true")
    assert publish.json() == {"created": 0, "unchanged": 0, "published": 3}
    assert published_count(client, {}) == 3
    assert stored_versions(client, admin, "imp-c") == [(1, "published")]
    imported = client.get("/v1/factors/imp-c").json()
    assert imported["kgco2e_per_unit"] == "0.6361"
    assert imported["supplements"] == "imp-a"
    assert imported["uncertainty"] == {"distribution": "lognormal", "gsd": 1.05}
    assert imported["names"] == {"zh-Hans": "电网", "zh-Hant": "電網", "en": "Grid"}

    once_more = post(client, admin, data, "text/csv", publish="true")
    assert once_more.json() == {"created": 0, "unchanged": 3, "published": 0}


def test_json_import_with_publish(client, auth):
    admin = auth("admin")
    data = json.dumps([as_json(r) for r in GOOD]).encode()
    result = post(client, admin, data, "application/json", publish="true")
    assert result.status_code == 200, result.text
    assert result.json() == {"created": 3, "unchanged": 0, "published": 0}
    assert published_count(client, {}) == 3
    assert client.get("/v1/factors/imp-b").json()["status"] == "published"
    assert post(client, admin, data, "application/json", publish="true").json() == {
        "created": 0, "unchanged": 3, "published": 0}


def test_the_same_factors_as_csv_and_as_json_are_the_same_content(client, auth):
    admin = auth("admin")
    assert post(client, admin, to_csv(GOOD), "text/csv").json()["created"] == 3
    same = post(client, admin, json.dumps([as_json(r) for r in GOOD]).encode(), "application/json")
    assert same.json() == {"created": 0, "unchanged": 3, "published": 0}


def test_a_changed_row_is_a_new_version(client, auth):
    admin = auth("admin")
    post(client, admin, to_csv(GOOD), "text/csv", publish="true")
    changed = [GOOD[0], {**GOOD[1], "kgco2e_per_unit": "0.5300"}, GOOD[2]]
    result = post(client, admin, to_csv(changed), "text/csv")
    assert result.json() == {"created": 1, "unchanged": 2, "published": 0}
    assert stored_versions(client, admin, "imp-b") == [(1, "published"), (2, "draft")]
    assert client.get("/v1/factors/imp-b").json()["kgco2e_per_unit"] == "0.5306"  # v1 until v2 is published


def test_csv_with_bad_rows_imports_nothing_and_names_their_lines(client, auth):
    admin = auth("admin")
    post(client, admin, to_csv([row("existing")]), "text/csv", publish="true")
    assert published_count(client, admin) == 1
    rows = [
        row("good-1"),                                             # line 2
        row("good-2", source="IPCC 2006,\nVolume 2\nTable 2.2"),   # lines 3-5: a quoted cell over three lines
        row("bad-1", tier="provincial", region="CN"),              # line 6
        row("good-3", valid_from="2023-01-01"),                    # line 7
        row("bad-2", kgco2e_per_unit="zero point five"),           # line 8
    ]
    data = to_csv(rows)
    assert data.decode().count("\n") == 8  # header + 5 rows + 2 line breaks inside the quoted cell
    response = post(client, admin, data, "text/csv", publish="true")
    assert bad_lines(response) == {6, 8}
    fields = {(e["line"], e.get("field")) for e in response.json()["errors"]}
    assert (6, "region") in fields and (8, "kgco2e_per_unit") in fields
    # Nothing was written: neither the good rows nor the bad ones.
    assert published_count(client, admin) == 1
    for factor_id in ("good-1", "good-2", "good-3", "bad-1", "bad-2"):
        assert stored_versions(client, admin, factor_id) == []


def test_csv_line_numbers_skip_blank_lines_and_crlf(client, auth):
    admin = auth("admin")
    text = to_csv([row("ok-1"), row("oops", region="CN-SD")], lineterminator="\r\n").decode()
    header, first, second = text.split("\r\n")[:3]
    data = "\r\n".join([header, first, "", "", second, ""]).encode()  # the bad row is on line 5
    assert bad_lines(post(client, admin, data, "text/csv")) == {5}
    assert stored_versions(client, admin, "ok-1") == []


def test_csv_with_a_byte_order_mark_imports(client, auth):
    admin = auth("admin")
    result = post(client, admin, b"\xef\xbb\xbf" + to_csv(GOOD[:2]), "text/csv")
    assert result.status_code == 200, result.text
    assert result.json()["created"] == 2


def test_json_with_bad_items_imports_nothing(client, auth):
    admin = auth("admin")
    items = [as_json(r) for r in GOOD]
    bad_missing = as_json(row("bad-1"))
    del bad_missing["names"]
    bad_owner = {**as_json(row("bad-2")), "owner_org": "acme"}
    data = json.dumps([items[0], bad_missing, items[1], items[2], bad_owner]).encode()
    response = post(client, admin, data, "application/json", publish="true")
    assert bad_lines(response) == {2, 5}  # JSON "lines" are 1-based positions in the array
    fields = {(e["line"], e.get("field")) for e in response.json()["errors"]}
    assert (2, "names") in fields and (5, "owner_org") in fields
    assert published_count(client, admin) == 0
    assert stored_versions(client, admin, "imp-a") == []


def test_json_numbers_are_exact(client, auth):
    admin = auth("admin")
    data = json.dumps([as_json(row("exact"))]).replace('"0.5366"', "0.123456789012345678").encode()
    assert b"0.123456789012345678," in data
    assert post(client, admin, data, "application/json", publish="true").status_code == 200
    assert client.get("/v1/factors/exact").json()["kgco2e_per_unit"] == "0.123456789012345678"


def test_repeated_row_and_dangling_supplements_are_rejected(client, auth):
    admin = auth("admin")
    repeated = post(client, admin, to_csv([row("dup"), row("other"), row("dup")]), "text/csv")
    assert bad_lines(repeated) == {4}
    dangling = post(client, admin, to_csv([row("sd", tier="provincial", region="CN-SD", supplements="nowhere")]),
                    "text/csv")
    assert bad_lines(dangling) == {2}
    assert dangling.json()["errors"][0]["field"] == "supplements"
    assert published_count(client, admin) == 0 and stored_versions(client, admin, "dup") == []


def test_supplements_may_name_a_national_factor_already_stored(client, auth):
    admin = auth("admin")
    post(client, admin, to_csv([GOOD[0]]), "text/csv", publish="true")
    result = post(client, admin, to_csv([GOOD[2]]), "text/csv", publish="true")
    assert result.json() == {"created": 1, "unchanged": 0, "published": 0}


@pytest.mark.parametrize(("data", "media_type"), [
    (to_csv(GOOD, columns=[c for c in COLUMNS if c not in ("unit", "source")]), "text/csv"),
    (to_csv(GOOD, columns=[*COLUMNS, "colour"]), "text/csv"),
    (b"", "text/csv"),
    (to_csv([row("gbk", source="国家统计局")]).decode().encode("gbk"), "text/csv"),
    (json.dumps(as_json(GOOD[0])).encode(), "application/json"),
    (b'[{"id": "broken"', "application/json"),
])
def test_whole_file_problems_are_line_1(client, auth, data, media_type):
    admin = auth("admin")
    response = post(client, admin, data, media_type, publish="true")
    assert bad_lines(response) == {1}
    assert published_count(client, admin) == 0


def test_missing_columns_are_named(client, auth):
    data = to_csv(GOOD, columns=[c for c in COLUMNS if c not in ("unit", "source")])
    response = post(client, auth("admin"), data, "text/csv", lang="en")
    message = response.json()["errors"][0]["message"]
    assert "source" in message and "unit" in message


def test_media_type_and_access(client, auth):
    data = to_csv(GOOD)
    unsupported = post(client, auth("admin"), data, "text/plain")
    assert unsupported.status_code == 415
    assert unsupported.headers["content-type"].startswith("application/problem+json")
    assert post(client, {}, data, "text/csv").status_code == 401
    assert post(client, auth("merchant", org="acme"), data, "text/csv").status_code == 403
    assert published_count(client, auth("admin")) == 0
    assert stored_versions(client, auth("admin"), "imp-a") == []


def test_a_file_over_the_row_limit_is_refused_at_line_1(client, auth, monkeypatch):
    from carbonpuhui.factors import importer

    monkeypatch.setattr(importer, "MAX_ROWS", 3)
    rows = [{**GOOD[0], "id": f"cap-{i}"} for i in range(4)]
    for body, media_type in ((to_csv(rows), "text/csv"), (json.dumps(rows).encode(), "application/json")):
        response = post(client, auth("admin"), body, media_type)
        assert response.status_code == 422
        assert [e["line"] for e in response.json()["errors"]] == [1]
    assert post(client, auth("admin"), to_csv(rows[:3]), "text/csv").json()["created"] == 3
