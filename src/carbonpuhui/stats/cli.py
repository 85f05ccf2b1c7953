"""``carbonpuhui stats``: write a city's quarterly report files (and optionally submit it)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from carbonpuhui.i18n import SUPPORTED


@click.group()
def stats() -> None:
    """Pilot statistics and the cities' quarterly reports."""


@stats.command("report")
@click.option("--city", required=True, help="The city's GB/T 2260 code, e.g. 370600 (Yantai).")
@click.option("--quarter", required=True, help="e.g. 2025Q1 (quarters in China Standard Time).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Directory for report.json, report.csv and report.<lang>.html.")
@click.option("--lang", type=click.Choice([*SUPPORTED, "all"]), default="all", show_default=True,
              help="Language of the CSV names and the HTML page (all: one page per language).")
@click.option("--submit", is_flag=True, help="Freeze the report as the next revision (the quarter must have ended).")
@click.option("--note", default=None, help="A note stored with a submitted revision.")
@click.option("--database-url", default=None, help="Overrides CARBONPUHUI_DATABASE_URL.")
def report(city: str, quarter: str, out_dir: Path, lang: str, submit: bool, note: str | None,
           database_url: str | None) -> None:
    """Write the report of CITY for QUARTER: the current draft, or with --submit a new frozen revision.
    Prints a JSON summary on stdout; the progress bar goes to stderr."""
    import msgspec
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from carbonpuhui.auth import Principal
    from carbonpuhui.cli import _run_with_db, _settings
    from carbonpuhui.db.engine import read_snapshot
    from carbonpuhui.errors import ProblemError
    from carbonpuhui.stats import render, reports

    settings = _settings()
    if database_url:
        settings = msgspec.structs.replace(settings, database_url=database_url)
    try:
        code, period = reports.parse_city(city), reports.parse_quarter(quarter)
    except ProblemError as exc:
        raise click.UsageError(str(exc)) from exc
    locales = list(SUPPORTED) if lang == "all" else [lang]
    actor = Principal(sub=f"cli:{os.environ.get('USER', 'admin')}", roles=frozenset({"admin"}))
    steps = ["indicators", "previous quarter", "labels", "tenders", "credits", "report.json", "report.csv",
             *(f"report.{locale}.html" for locale in locales)]

    async def job(db):  # type: ignore[no-untyped-def]
        with Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                      console=Console(stderr=True), transient=False, disable=not sys.stderr.isatty()) as bar:
            task = bar.add_task(f"report {code} {period}", total=len(steps))

            def step(name: str) -> None:
                bar.update(task, description=name, completed=steps.index(name))

            async with db.transaction() as session:
                if submit:
                    row = await reports.submit(session, city=code, quarter=period, principal=actor, note=note,
                                               progress=step)
                    content, sha = row.content, row.content_sha256
                else:
                    await read_snapshot(session)  # a draft: every part from one state of the database
                    content = await reports.build(session, code, period, progress=step)
                    sha = None
            out_dir.mkdir(parents=True, exist_ok=True)
            written = []
            step("report.json")
            (out_dir / "report.json").write_bytes(render.to_json(content))
            written.append("report.json")
            step("report.csv")
            (out_dir / "report.csv").write_text(render.to_csv(content, locales[0]), encoding="utf-8", newline="")
            written.append("report.csv")
            for locale in locales:
                step(f"report.{locale}.html")
                (out_dir / f"report.{locale}.html").write_text(render.to_html(content, locale, sha=sha),
                                                               encoding="utf-8")
                written.append(f"report.{locale}.html")
            bar.update(task, description="done", completed=len(steps))
        return content, sha, written

    try:
        content, sha, written = _run_with_db(settings, job)
    except ProblemError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps({"city": code, "quarter": str(period), "revision": content["revision"],
                           "content_sha256": sha, "out": str(out_dir), "files": written}, ensure_ascii=False))
