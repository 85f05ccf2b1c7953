"""``carbonpuhui`` command line: serve, token, db upgrade, demo, clients, factors import, ledger check,
credits expire, leaderboard rebuild."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import click

from carbonpuhui.settings import Settings, load_settings


def _settings() -> Settings:
    try:
        return load_settings()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def _migrate(settings: Settings) -> None:
    from carbonpuhui.db.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)


class _Group(click.Group):
    """Operational failures (no database, an unreadable data directory, a bad URL) end with one
    clear line and exit status 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        from alembic.util import CommandError
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return super().invoke(ctx)
        except (SQLAlchemyError, CommandError) as exc:
            raise click.ClickException(f"database: {str(exc).splitlines()[0]}") from exc
        except OSError as exc:
            raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc


@click.group(cls=_Group)
@click.version_option(package_name="carbonpuhui")
def main() -> None:
    """carbonpuhui: provincial product carbon footprints, labels and carbon-inclusive credits."""


@main.command()
@click.option("--demo", is_flag=True, help="Load the demo data set before serving.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--tls-self-signed", is_flag=True,
              help="Serve HTTPS with a fresh self-signed certificate (local testing); its path is printed.")
def serve(demo: bool, host: str, port: int, workers: int, tls_cert: str | None, tls_key: str | None,
          tls_self_signed: bool) -> None:
    """Run the HTTP server (migrating the embedded database first)."""
    import uvicorn

    from carbonpuhui.auth.keys import load_or_create_signing_key

    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if tls_self_signed and tls_cert:
        raise click.UsageError("--tls-self-signed replaces --tls-cert/--tls-key")
    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if tls_self_signed:
        from carbonpuhui.tls import self_signed

        try:
            cert, key = self_signed(settings.data_dir / "tls", [host, "localhost", "127.0.0.1", "::1"])
        except ValueError as exc:  # a name a certificate cannot carry: empty, over 64 characters, not IDNA
            raise click.UsageError(f"--host {host!r} cannot name a certificate: {exc}") from exc
        tls_cert, tls_key = str(cert), str(key)
        click.echo(f"self-signed certificate: {cert}", err=True)
    if settings.embedded_database:
        _migrate(settings)
    if demo:
        _load_demo(settings)
    load_or_create_signing_key(settings.key_path)  # once, before workers race for it (PACT tokens use it)
    if workers > 1:
        # Prometheus counters from every worker, aggregated at /metrics.
        metrics_dir = settings.data_dir / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    click.echo(f"carbonpuhui on http{'s' if tls_cert else ''}://{host}:{port} "
               f"(database: {'embedded SQLite' if settings.embedded_database else 'configured'}, "
               f"store: {'Redis' if settings.redis_url else 'in-process'}; API docs at /schema)", err=True)
    uvicorn.run("carbonpuhui.app:create_app", factory=True, host=host, port=port, workers=workers,
                ssl_certfile=tls_cert, ssl_keyfile=tls_key, log_level="info",
                # Behind a load balancer the client address (rate limits, logs) comes from
                # X-Forwarded-For, but only when the hop that sent it is trusted.
                proxy_headers=settings.trusted_proxies is not None,
                forwarded_allow_ips=settings.trusted_proxies or "",
                # Bounded per worker: past this, new connections get 503 instead of queueing forever.
                limit_concurrency=1000, timeout_keep_alive=5, backlog=2048,
                access_log=False)  # the app logs each request as structured JSON


@main.command()
@click.option("--sub", required=True, help="Subject: the user or client the token is for.")
@click.option("--role", "roles", required=True, multiple=True,
              type=click.Choice(["consumer", "merchant", "verifier", "officer", "admin"]),
              help="A role (repeat for several).")
@click.option("--org", default=None, help="Organisation the caller acts for.")
@click.option("--ttl", default=3600, show_default=True, type=click.IntRange(1, 366 * 86400), help="Seconds.")
def token(sub: str, roles: tuple[str, ...], org: str | None, ttl: int) -> None:
    """Print an access token signed with this machine's key (embedded default only)."""
    from carbonpuhui.auth.tokens import mint_token

    settings = _settings()
    if settings.jwks_url:
        raise click.UsageError("tokens come from the configured identity provider (CARBONPUHUI_JWKS_URL)")
    try:
        value = mint_token(settings.key_path, issuer=settings.token_issuer, audience=settings.token_audience,
                           sub=sub, roles=list(roles), org=org, ttl=ttl)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(value)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the Alembic migrations."""
    from carbonpuhui.db.migrate import upgrade

    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.effective_database_url, revision)
    click.echo(f"database at {revision}", err=True)


def _load_demo(settings: Settings) -> None:
    from carbonpuhui.db import Database
    from carbonpuhui.demo import load_demo

    async def run() -> None:
        db = Database(settings.effective_database_url)
        try:
            result = await load_demo(db)
        finally:
            await db.dispose()
        click.echo(f"demo factors: {result.created} created, {result.unchanged} unchanged", err=True)

    asyncio.run(run())


@main.command()
def demo() -> None:
    """Load the demo data set (sourced factors); running it again changes nothing."""
    settings = _settings()
    if settings.embedded_database:
        _migrate(settings)
    _load_demo(settings)


@main.group()
def clients() -> None:
    """PACT machine clients (OAuth 2.0 client credentials) of organisations."""


@clients.command("create")
@click.option("--org", required=True, help="The organisation the client reads for.")
@click.option("--callback-url", default=None, help="The client's own PACT API base URL (answers to its events).")
@click.option("--callback-client-id", default=None, help="Credentials the platform uses at that API.")
@click.option("--callback-client-secret", default=None)
def clients_create(org: str, callback_url: str | None, callback_client_id: str | None,
                   callback_client_secret: str | None) -> None:
    """Register a client; prints {"client_id", "client_secret"} once (only a digest is kept)."""
    import json

    from carbonpuhui.db import Database
    from carbonpuhui.pact.clients import create_client, validate_callback_url

    settings = _settings()
    try:
        callback = validate_callback_url(callback_url, allow_http=settings.pact_allow_http)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if bool(callback_client_id) != bool(callback_client_secret):
        raise click.UsageError("--callback-client-id and --callback-client-secret go together")
    if settings.embedded_database:
        _migrate(settings)

    async def run() -> tuple[str, str]:
        db = Database(settings.effective_database_url)
        try:
            async with db.transaction() as session:
                row, secret = await create_client(
                    session, org=org, actor=f"cli:{os.environ.get('USER', 'admin')}", callback_base_url=callback,
                    callback_client_id=callback_client_id, callback_client_secret=callback_client_secret)
                return row.client_id, secret
        finally:
            await db.dispose()

    try:
        client_id, secret = asyncio.run(run())
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(json.dumps({"client_id": client_id, "client_secret": secret}))


@clients.command("revoke")
@click.argument("client_id")
def clients_revoke(client_id: str) -> None:
    """Revoke a client: its tokens stop working at once."""
    from datetime import UTC, datetime

    from carbonpuhui.db import Database
    from carbonpuhui.pact.models import PactClient

    settings = _settings()

    async def run() -> bool:
        db = Database(settings.effective_database_url)
        try:
            async with db.transaction() as session:
                row = await session.get(PactClient, client_id)
                if row is None:
                    return False
                row.revoked_at = row.revoked_at or datetime.now(UTC)
                return True
        finally:
            await db.dispose()

    if not asyncio.run(run()):
        raise click.ClickException(f"no client {client_id}")
    click.echo(f"client {client_id} revoked", err=True)


@main.group()
def pact() -> None:
    """PACT data exchange."""


@pact.command("redeliver")
@click.option("--max-age-hours", default=24, show_default=True, type=click.IntRange(1, 24 * 30))
def pact_redeliver(max_age_hours: int) -> None:
    """Deliver again the answers to clients' events that have not arrived."""
    from types import SimpleNamespace

    from carbonpuhui.db import Database
    from carbonpuhui.pact.events import redeliver

    settings = _settings()

    async def run() -> tuple[int, int]:
        db = Database(settings.effective_database_url)
        try:
            return await redeliver(SimpleNamespace(db=db, settings=settings),  # type: ignore[arg-type]
                                   max_age_hours=max_age_hours)
        finally:
            await db.dispose()

    tried, delivered = asyncio.run(run())
    click.echo(f'{{"tried": {tried}, "delivered": {delivered}}}')
    if delivered < tried:
        sys.exit(1)


@main.group()
def factors() -> None:
    """The emission-factor database."""


@factors.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--publish", is_flag=True, help="Publish the imported versions at once.")
@click.option("--format", "fmt", type=click.Choice(["auto", "csv", "json"]), default="auto")
def factors_import(file: Path, publish: bool, fmt: str) -> None:
    """Import factors from a CSV or JSON file: all rows or none."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from carbonpuhui.auth import Principal
    from carbonpuhui.db import Database
    from carbonpuhui.errors import UnprocessableError
    from carbonpuhui.factors.importer import import_factors, parse
    from carbonpuhui.factors.service import FactorService

    settings = _settings()
    if settings.embedded_database:
        _migrate(settings)
    if fmt == "auto":
        fmt = "csv" if file.suffix.lower() == ".csv" else "json"
    data = file.read_bytes()
    actor = Principal(sub=f"cli:{os.environ.get('USER', 'admin')}", roles=frozenset({"admin"}))

    async def run() -> int:
        db = Database(settings.effective_database_url)
        try:
            # The bar goes to stderr: stdout carries only the JSON result, for scripts.
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          console=Console(stderr=True), transient=False,
                          disable=not sys.stderr.isatty()) as bar:
                rows = parse(data, "text/csv" if fmt == "csv" else "application/json")
                task = bar.add_task(f"importing {file.name}", total=len(rows))
                try:
                    async with db.transaction() as session:
                        result = await import_factors(
                            FactorService(session), rows, actor, publish=publish,
                            progress=lambda done, _total: bar.update(task, completed=done))
                except UnprocessableError as exc:
                    for err in exc.errors or []:
                        where = f"line {err.line}" + (f", {err.field}" if err.field else "")
                        click.echo(f"{file.name}: {where}: {err.message}", err=True)
                    click.echo(f"nothing imported: {len({e.line for e in exc.errors or []})} bad row(s)", err=True)
                    return 1
        finally:
            await db.dispose()
        click.echo(f'{{"created": {result.created}, "unchanged": {result.unchanged}, '
                   f'"published": {result.published}}}')
        return 0

    sys.exit(asyncio.run(run()))


def _run_with_db(settings: Settings, job):  # type: ignore[no-untyped-def]
    from carbonpuhui.db import Database

    async def run():  # type: ignore[no-untyped-def]
        db = Database(settings.effective_database_url)
        try:
            return await job(db)
        finally:
            await db.dispose()

    if settings.embedded_database:
        _migrate(settings)
    return asyncio.run(run())


@main.group()
def ledger() -> None:
    """The credits ledger."""


@ledger.command("check")
def ledger_check() -> None:
    """Verify every ledger invariant; exit 1 on any violation (printed on stderr)."""
    import json

    from carbonpuhui.credits.maintenance import check

    async def job(db):  # type: ignore[no-untyped-def]
        async with db.transaction() as session:
            return await check(session)

    counts, problems = _run_with_db(_settings(), job)
    for problem in problems:
        click.echo(f"violation: {problem}", err=True)
    click.echo(json.dumps({**counts, "violations": len(problems)}))
    if problems:
        sys.exit(1)


@main.group()
def credits() -> None:
    """Carbon-inclusive credits."""


@credits.command("expire")
def credits_expire() -> None:
    """Expire credits older than CARBONPUHUI_CREDIT_EXPIRY_MONTHS, oldest first (safe to run twice), and
    forget Idempotency-Key responses older than a week. Run it daily."""
    import json

    from carbonpuhui.credits.maintenance import expire_all, purge_idempotency

    async def job(db):  # type: ignore[no-untyped-def]
        return (*await expire_all(db), await purge_idempotency(db))

    accounts, grams, purged = _run_with_db(_settings(), job)
    click.echo(json.dumps({"accounts": accounts, "expired_g": grams, "idempotency_keys_purged": purged}))


@main.group()
def leaderboard() -> None:
    """Leaderboards (a view of the ledger kept in Redis)."""


@leaderboard.command("rebuild")
def leaderboard_rebuild() -> None:
    """Rebuild this week's and month's boards from the ledger (after Redis lost them, say)."""
    import json

    from carbonpuhui.credits.leaderboard import Leaderboard
    from carbonpuhui.stores import Stores

    settings = _settings()

    async def job(db):  # type: ignore[no-untyped-def]
        stores = Stores(settings)
        try:
            async with db.transaction() as session:
                return await Leaderboard(stores, settings.leaderboard_size).rebuild(session)
        finally:
            await stores.close()

    counts = _run_with_db(settings, job)
    click.echo(json.dumps({"store": "redis" if settings.redis_url else "none (read from the ledger)", **counts}))


from carbonpuhui.stats.cli import stats as _stats  # noqa: E402 - the group imports this module's helpers

main.add_command(_stats)


if __name__ == "__main__":  # pragma: no cover
    main()
