"""Settings, read once from the environment (prefix ``CARBONPUHUI_``).

With nothing set the platform runs embedded: a SQLite file and a signing key in the data
directory, an in-process store. Setting the database / Redis URLs moves it onto real services.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

PREFIX = "CARBONPUHUI_"
LOCALES = ("zh-Hans", "zh-Hant", "en")


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    data_dir: Path
    database_url: str | None = None  # None -> sqlite+aiosqlite file in data_dir
    redis_url: str | None = None  # None -> in-process store
    redis_namespace: str = "carbonpuhui"
    token_issuer: str = "urn:carbonpuhui:local"
    token_audience: str = "carbonpuhui"
    jwks_url: str | None = None  # None -> the local signing key in data_dir
    default_locale: str = "zh-Hans"
    public_rate_limit_per_minute: int = 600
    # Footprint computations (Monte Carlo) per caller and minute: each can cost a second of CPU.
    compute_rate_limit_per_minute: int = 120
    max_body_bytes: int = 1_048_576
    log_json: bool = True
    trusted_proxies: str | None = None  # e.g. "10.0.0.1,10.0.0.2": honour their X-Forwarded-For
    # PACT is HTTPS-only (its conformance cases refuse plain HTTP). Development may allow http, and
    # outbound calls (supplier endpoints, event answers) to loopback/private addresses.
    pact_allow_http: bool = False
    pact_outbound_private: bool = False
    pact_ca_bundle: str | None = None  # extra CA file for outbound PACT calls (a test CA, say)
    # Where phones reach the label pages (the QR codes' GS1 Digital Link host), e.g.
    # "https://id.example.cn". Unset: the address the request came to.
    public_base_url: str | None = None
    # Credits (碳普惠): how long earned credits last, how old a receipt may be, the board's length.
    credit_expiry_months: int = 24
    receipt_max_age_days: int = 30
    leaderboard_size: int = 20
    # One receipt credits at most this (10 t CO2e): a merchant's data error must not mint without bound.
    max_receipt_g: int = 10_000_000
    # Organisations whose signed attestations credit bus, metro and rail trips, e.g. "qd-metro,yt-bus".
    transit_operators: frozenset[str] = frozenset()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'carbonpuhui.sqlite3'}"

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def key_path(self) -> Path:
        return self.data_dir / "signing-key.jwk"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "carbonpuhui"


def _bool(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


def load_settings(environ: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from ``environ`` (default: the process environment) plus explicit overrides."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(PREFIX + name.upper())
        return value if value not in (None, "") else None

    values: dict[str, object] = {"data_dir": Path(get("data_dir") or _default_data_dir())}
    for name in ("database_url", "redis_url", "redis_namespace", "token_issuer", "token_audience",
                 "jwks_url", "default_locale", "trusted_proxies", "pact_ca_bundle", "public_base_url"):
        if (value := get(name)) is not None:
            values[name] = value
    for name in ("public_rate_limit_per_minute", "compute_rate_limit_per_minute", "max_body_bytes",
                 "credit_expiry_months", "receipt_max_age_days", "leaderboard_size", "max_receipt_g"):
        if (value := get(name)) is not None:
            values[name] = int(value)
    if (value := get("transit_operators")) is not None:
        values["transit_operators"] = frozenset(org.strip() for org in value.split(",") if org.strip())
    for name in ("log_json", "pact_allow_http", "pact_outbound_private"):
        if (value := get(name)) is not None:
            values[name] = _bool(value)
    values.update(overrides)
    base = values.get("public_base_url")
    if isinstance(base, str):
        if not base.startswith(("http://", "https://")):
            raise ValueError("CARBONPUHUI_PUBLIC_BASE_URL must be an http(s) URL")
        values["public_base_url"] = base.rstrip("/")
    if values.get("default_locale", "zh-Hans") not in LOCALES:
        raise ValueError(f"CARBONPUHUI_DEFAULT_LOCALE must be one of {', '.join(LOCALES)}")
    for name, low, high in (("credit_expiry_months", 1, 600), ("receipt_max_age_days", 1, 3650),
                            ("leaderboard_size", 1, 1000), ("max_receipt_g", 1, 10**15)):
        value = values.get(name)
        if value is not None and not (isinstance(value, int) and low <= value <= high):
            raise ValueError(f"CARBONPUHUI_{name.upper()} must be an integer from {low} to {high}")
    if isinstance(values.get("transit_operators"), (list, tuple, set)):
        values["transit_operators"] = frozenset(values["transit_operators"])  # type: ignore[arg-type]
    return Settings(**values)  # type: ignore[arg-type]
