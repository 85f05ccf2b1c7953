"""Administrative divisions (GB/T 2260) and industries, as statistics group by them.

Codes are checked against python-stdnum's copy of the GB/T 2260 list (with the years each code was in
use): a code is accepted only if it is in force today. Statistics count at city level (a county rolls up
to its prefecture-level city, ``XXXX00``) and at province level (``XX0000``). Names in the three
locales are kept here for Shandong's province and cities, the pilot's scope; other codes fall back to
the list's Simplified Chinese name.
"""

from __future__ import annotations

import re
from functools import lru_cache

from stdnum import numdb

PROVINCE = "370000"

# Shandong and its 16 prefecture-level cities (Laiwu joined Jinan in 2019): zh-Hans, zh-Hant, en.
_NAMES: dict[str, tuple[str, str, str]] = {
    "370000": ("山东省", "山東省", "Shandong"),
    "370100": ("济南市", "濟南市", "Jinan"),
    "370200": ("青岛市", "青島市", "Qingdao"),
    "370300": ("淄博市", "淄博市", "Zibo"),
    "370400": ("枣庄市", "棗莊市", "Zaozhuang"),
    "370500": ("东营市", "東營市", "Dongying"),
    "370600": ("烟台市", "煙臺市", "Yantai"),
    "370700": ("潍坊市", "濰坊市", "Weifang"),
    "370800": ("济宁市", "濟寧市", "Jining"),
    "370900": ("泰安市", "泰安市", "Tai'an"),
    "371000": ("威海市", "威海市", "Weihai"),
    "371100": ("日照市", "日照市", "Rizhao"),
    "371300": ("临沂市", "臨沂市", "Linyi"),
    "371400": ("德州市", "德州市", "Dezhou"),
    "371500": ("聊城市", "聊城市", "Liaocheng"),
    "371600": ("滨州市", "濱州市", "Binzhou"),
    "371700": ("菏泽市", "菏澤市", "Heze"),
}

# Industries statistics group enterprises by (the pilot's first three, then the rest of the catalogue).
INDUSTRIES: dict[str, tuple[str, str, str]] = {
    "steel": ("钢铁", "鋼鐵", "Steel"),
    "tyres": ("轮胎", "輪胎", "Tyres"),
    "textiles": ("纺织", "紡織", "Textiles"),
    "chemicals": ("化工", "化工", "Chemicals"),
    "building_materials": ("建材", "建材", "Building materials"),
    "nonferrous_metals": ("有色金属", "有色金屬", "Non-ferrous metals"),
    "paper": ("造纸", "造紙", "Paper"),
    "machinery": ("机械装备", "機械裝備", "Machinery"),
    "electronics": ("电子信息", "電子信息", "Electronics"),
    "batteries": ("电池", "電池", "Batteries"),
    "photovoltaics": ("光伏", "光伏", "Photovoltaics"),
    "automotive": ("汽车", "汽車", "Automotive"),
    "food": ("食品", "食品", "Food"),
    "agriculture": ("农业", "農業", "Agriculture"),
    "retail": ("零售", "零售", "Retail"),
    "transport": ("交通运输", "交通運輸", "Transport"),
    "energy": ("能源", "能源", "Energy"),
    "public_sector": ("公共机构", "公共機構", "Public sector"),
    "other": ("其他", "其他", "Other"),
}

_CODE = re.compile(r"[1-9][0-9]{5}")
_IN_FORCE = re.compile(r"^\[(\d{4})?-(\d{4})?\]")


@lru_cache(maxsize=4096)
def _listed_name(code: str) -> str | None:
    """The list's name for ``code`` if the code is in force now, else None."""
    info = numdb.get("cn/loc").info(code)
    if len(info) < 2 or not info[1][0]:
        return None
    props = info[1][1]
    name = props.get("county")
    if name is None:
        return None
    years = _IN_FORCE.match(name)
    if years is not None:
        if years.group(2) is not None:  # "[-1983]…": abolished
            return None
        name = name[years.end():]
    return name


# The list's placeholders for "the city's districts" and "its counties" (370101, 370601, ...): no area.
_PLACEHOLDERS = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})


def is_division(code: str) -> bool:
    return bool(_CODE.fullmatch(code)) and _listed_name(code) not in (None, *_PLACEHOLDERS)


def city_of(code: str) -> str:
    """The prefecture-level city a division belongs to (itself for a city, the province for a province)."""
    return code if code.endswith("0000") else code[:4] + "00"


def province_of(code: str) -> str:
    return code[:2] + "0000"


def level(code: str) -> str:
    if code.endswith("0000"):
        return "province"
    return "city" if code.endswith("00") else "county"


def is_city(code: str) -> bool:
    return is_division(code) and level(code) == "city"


def contains(area: str, code: str) -> bool:
    """Whether ``code`` lies in ``area`` (a province or city code, or the code itself)."""
    if level(area) == "province":
        return code[:2] == area[:2]
    if level(area) == "city":
        return code[:4] == area[:4]
    return code == area


def names(code: str) -> dict[str, str]:
    known = _NAMES.get(code)
    if known is not None:
        return {"zh-Hans": known[0], "zh-Hant": known[1], "en": known[2]}
    listed = _listed_name(code) or code
    return {"zh-Hans": listed, "zh-Hant": listed, "en": listed}


def industry_names(industry: str) -> dict[str, str]:
    hans, hant, en = INDUSTRIES.get(industry, (industry, industry, industry))
    return {"zh-Hans": hans, "zh-Hant": hant, "en": en}


def cities(province: str = PROVINCE) -> list[str]:
    """The cities of ``province`` whose names this module knows (the pilot's reporting cities)."""
    return sorted(code for code in _NAMES if code != province and code[:2] == province[:2])
