"""Localisation: Babel message catalogs for zh-Hans, zh-Hant and en, and language negotiation.

Source strings are English and double as message ids (``N_`` marks them for extraction); the
catalogs in ``locales/<locale>/LC_MESSAGES/messages.po`` translate them. English needs no catalog.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from babel.core import UnknownLocaleError, get_global, parse_locale
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

SUPPORTED = ("zh-Hans", "zh-Hant", "en")
_CATALOG_DIRS = {"zh-Hans": "zh_Hans", "zh-Hant": "zh_Hant"}
_LOCALE_DIR = Path(__file__).parent / "locales"


def N_(message: str) -> str:  # noqa: N802 - the gettext convention
    """Mark a string for extraction; it is translated when rendered."""
    return message


@cache
def catalog(locale: str) -> Catalog | None:
    folder = _CATALOG_DIRS.get(locale)
    if folder is None:
        return None
    with open(_LOCALE_DIR / folder / "LC_MESSAGES" / "messages.po", "rb") as fh:
        return read_po(fh, locale=folder)


def translate(message: str, locale: str, **params: object) -> str:
    """Translate ``message`` into ``locale`` and fill its ``{placeholders}``."""
    text = message
    cat = catalog(locale)
    if cat is not None:
        entry = cat.get(message)
        if entry is not None and entry.string and not entry.fuzzy:
            text = str(entry.string)
    if params:
        try:
            text = text.format(**params)
        except (KeyError, IndexError, ValueError):
            text = message.format(**params)
    return text


def _to_supported(tag: str) -> str | None:
    """Map one language tag (zh-TW, zh-Hant-HK, zh, en-GB, ...) onto a supported locale."""
    tag = tag.strip().replace("-", "_")
    if not tag or tag == "*":
        return None
    try:
        language, territory, script, _variant = parse_locale(tag)[:4]
    except (ValueError, UnknownLocaleError):
        return None
    language = language.lower()
    if language == "en":
        return "en"
    if language != "zh":
        return None
    if not script:
        likely = get_global("likely_subtags")
        full = likely.get(f"zh_{territory}") if territory else None
        full = full or likely.get("zh", "zh_Hans_CN")
        script = parse_locale(full)[2] or "Hans"
    return "zh-Hant" if script.lower() == "hant" else "zh-Hans"


def negotiate(lang_param: str | None, accept_language: str | None, default: str) -> str:
    """``?lang=`` wins, then ``Accept-Language`` by q-value, then the configured default."""
    if lang_param and (found := _to_supported(lang_param)):
        return found
    if accept_language:
        ranked: list[tuple[float, int, str]] = []
        for index, part in enumerate(accept_language.split(",")):
            tag, _, params = part.partition(";")
            quality = 1.0
            for param in params.split(";"):
                key, _, value = param.strip().partition("=")
                if key == "q":
                    try:
                        quality = float(value)
                    except ValueError:
                        quality = 0.0
            if quality > 0:
                ranked.append((-quality, index, tag))
        for _q, _i, tag in sorted(ranked):
            if found := _to_supported(tag):
                return found
    return default if default in SUPPORTED else "zh-Hans"
