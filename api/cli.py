"""The ``fieldbook`` command: serve, migrate, manage accounts."""

import getpass
import os
import sys
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from sqlmodel import Session, col, select

from api import cli_backup, migrations
from api.config import Settings
from api.db import make_engine
from api.errors import AppError
from api.models import User
from api.users import create_user

app = typer.Typer(help="Fieldbook: the field journal for immersive customer research.", no_args_is_help=True)
user_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
app.add_typer(user_app, name="user")
console = Console(stderr=True)


def _engine(*, migrated: bool = True) -> sa.Engine:
    """The configured database; ``migrated``: one at this version's schema, or a clear exit (not a
    traceback about a missing table) for commands run before ``fieldbook migrate``."""
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.sqlalchemy_url)
    if migrated and not migrations.is_current(engine):
        engine.dispose()
        console.print(
            "[red]The database is not at this version's schema: run `fieldbook migrate` first "
            "(`fieldbook serve` and `make run` also do).[/red]"
        )
        raise typer.Exit(1)
    return engine


@app.command()
def migrate() -> None:
    """Upgrade the configured database to the newest schema."""
    engine = _engine(migrated=False)
    migrations.upgrade(engine)
    engine.dispose()
    console.print("[green]Database is at the newest schema.[/green]")


def _command() -> str:
    """How to call this command again: the console script beside this Python (e.g. .venv/bin/fieldbook)."""
    script = Path(sys.executable).parent / "fieldbook"
    return str(script) if script.exists() else "fieldbook"


def _welcome(engine: sa.Engine, host: str, port: int) -> None:
    with Session(engine) as session:
        has_users = session.exec(select(User.id).limit(1)).first() is not None
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104

    def say(text: str) -> None:
        # soft_wrap: a command split over two lines cannot be copied and pasted.
        console.print(text, soft_wrap=True)

    say(f"\n[bold]Fieldbook[/bold] is starting at {url}  (the app: {url}/ · API docs: {url}/docs)")
    if not has_users:
        say("[yellow]No accounts yet.[/yellow] Create the first one (you will be asked for a password):")
        say(f"    [bold]{_command()} user add you@example.com --name 'Your Name' --admin[/bold]")
        say(
            f"then sign in at {url}/ (or at {url}/docs with the Authorize button) with that e-mail and password."
        )
        say(f"Optional: [bold]{_command()} demo[/bold] loads a realistic demo stint to look around.\n")
    else:
        say(f"Sign in at {url}/ (or {url}/docs, Authorize button) with your e-mail and password.\n")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Migrate to the newest schema, then serve the API and the app."""
    engine = _engine(migrated=False)
    migrations.upgrade(engine)
    _welcome(engine, host, port)
    _release_claims(engine)
    engine.dispose()
    _remove_temp_files()
    os.environ.setdefault("FIELDBOOK_LOG_JSON", "1")  # inherited by every worker process
    from api import workers as worker_processes  # uvicorn: only for this command
    from api.search import indexer_for_workers

    with indexer_for_workers(Settings()):
        worker_processes.run(
            "api.main:serve_app",
            workers=workers,
            host=host,
            port=port,
            proxy_headers=True,
            log_config=None,  # our JSON logging, configured in create_app
        )


def _release_claims(engine: sa.Engine) -> None:
    """Before any worker runs, no push is running: an unfinished Idempotency-Key claim is a killed
    server's, and its retry must not wait for the claim to time out."""
    from api.idempotency import release_unfinished

    with Session(engine) as session:
        freed = release_unfinished(session)
    if freed:
        console.print(
            f"Released {freed} Idempotency-Key claim(s) of requests a stopped server never finished."
        )


def _remove_temp_files() -> None:
    """Before any worker runs, no request is writing: temp files there are a killed server's."""
    from api.store_check import remove_temp_files
    from storage import make_store

    settings = Settings()
    removed = remove_temp_files(settings, make_store(settings.storage_url, settings.data_dir))
    if removed:
        console.print(f"Removed {removed} temp file(s) left by an interrupted write.")


def _read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        console.print("[red]The passwords differ.[/red]")
        raise typer.Exit(2)
    return first


@app.command()
def demo(
    owner: Annotated[str, typer.Option(help="E-mail of the account that manages the demo stint")] = "",
) -> None:
    """Load a realistic demo stint (Chinese and English observations, a photo, insights, actions)."""
    from api.demo import load_demo

    settings = Settings()
    engine = _engine(migrated=False)
    migrations.upgrade(engine)
    with Session(engine) as session:
        if not owner:
            first_admin = session.exec(
                select(User)
                .where(col(User.is_admin).is_(True), col(User.is_active).is_(True))
                .order_by(col(User.created_at))
            ).first()
            owner = first_admin.email if first_admin else ""
    engine.dispose()
    if not owner:
        console.print(
            "[red]No account to own the demo; create one with `fieldbook user add EMAIL --admin`.[/red]"
        )
        raise typer.Exit(1)
    try:
        made = load_demo(settings, owner)
    except LookupError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print(
        f"[green]Demo stint loaded for {owner}:[/green] {made['observations']} observations, "
        f"{made['actions']} actions (stint {made['stint_id']})."
    )


@user_app.command("add")
def user_add(
    email: str,
    name: Annotated[str, typer.Option(help="Display name")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="Make this account a global admin")] = False,
) -> None:
    """Create an account. The password is read from stdin when it is not a terminal, prompted otherwise."""
    password = _read_password()
    engine = _engine()
    try:
        with Session(engine, expire_on_commit=False) as session:
            user = create_user(session, email, password, name=name, is_admin=admin)
    except (AppError, ValueError) as exc:
        console.print(f"[red]{getattr(exc, 'message', exc)}[/red]")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    console.print(f"[green]Created {'admin ' if admin else ''}account {user.email}.[/green]")


@user_app.command("list")
def user_list() -> None:
    """List accounts."""
    engine = _engine()
    with Session(engine) as session:
        for user in session.exec(select(User).order_by(User.email)).all():
            flags = ("admin " if user.is_admin else "") + ("" if user.is_active else "disabled")
            typer.echo(f"{user.email}\t{user.name}\t{flags.strip()}")
    engine.dispose()


@app.command()
def gc(
    grace_minutes: Annotated[
        int, typer.Option(min=0, help="Keep blobs stored more recently than this (uploads in flight)")
    ] = 60,
) -> None:
    """Remove stored files no live material needs, and partial uploads that expired."""
    from datetime import timedelta

    from api.gc import collect
    from storage import make_store

    settings = Settings()
    engine = _engine()
    try:
        store = make_store(settings.storage_url, settings.data_dir)
        report = collect(engine, store, settings, timedelta(minutes=grace_minutes))
    finally:
        engine.dispose()
    console.print(
        f"[green]Removed {report.blobs_removed} unreferenced blob(s), {report.uploads_removed} expired "
        f"upload(s), {report.stray_files_removed} stray file(s); kept {report.blobs_kept} blob(s).[/green]"
    )


@app.command("extract-text")
def extract_text() -> None:
    """Extract text (and OCR photos) for materials still waiting for it, e.g. after a crash."""
    from api.textextract import drain
    from storage import make_store

    settings = Settings()
    engine = _engine()
    try:
        handled = drain(engine, make_store(settings.storage_url, settings.data_dir), limit=10**9)
    finally:
        engine.dispose()
    console.print(f"[green]Handled {handled} material(s).[/green]")


@app.command()
def reindex(
    wait: Annotated[int, typer.Option(min=0, help="Seconds to wait for the running indexer")] = 600,
) -> None:
    """Rebuild the search index from the database (progress bar) and swap it in atomically;
    search keeps answering from the old index meanwhile."""
    from rich.progress import Progress

    from api.search_indexer import Indexer, indexer_lock, store_for

    engine = _engine()
    try:
        indexer = Indexer(store_for(Settings().data_dir), engine)
        with indexer_lock(indexer.store.lock_path, wait_seconds=wait) as got:
            if not got:
                console.print("[red]The search indexer is busy (lock held); try again later.[/red]")
                raise typer.Exit(1)
            with Progress(console=console) as progress:
                bar = progress.add_task("Indexing", total=indexer.record_count())
                indexed = indexer.rebuild_locked(progress=lambda n: progress.advance(bar, n))
    finally:
        engine.dispose()
    console.print(f"[green]Indexed {indexed} record(s); the new search index is live.[/green]")


@app.command()
def check(
    deep: Annotated[bool, typer.Option(help="Also hash every blob (reads all stored bytes)")] = False,
    grace_minutes: Annotated[
        int, typer.Option(min=0, help="Ignore unreferenced blobs and temp files younger than this")
    ] = 60,
) -> None:
    """Report inconsistencies between the database, the search index and the blob store (missing,
    corrupt with --deep, unreferenced blobs, files left by an interrupted write); exit 1 if any."""
    from datetime import timedelta

    from api.search_check import IndexerBusy
    from api.search_check import check as check_search
    from api.search_index import IndexUnavailable
    from api.search_indexer import store_for
    from api.store_check import check_store
    from storage import make_store

    settings = Settings()
    engine = _engine()
    try:
        report = check_search(store_for(settings.data_dir), engine)
        blobs = check_store(
            engine,
            make_store(settings.storage_url, settings.data_dir),
            settings,
            deep=deep,
            grace=timedelta(minutes=grace_minutes),
        )
    except IndexUnavailable:
        console.print("[red]search: the index is missing or unreadable; run `fieldbook reindex`.[/red]")
        raise typer.Exit(1) from None
    except IndexerBusy as exc:
        console.print(f"[red]search: {exc}.[/red]")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    for ok, lines in ((report.ok, report.lines()), (blobs.ok, blobs.lines())):
        for line in lines:
            console.print(line if ok else f"[red]{line}[/red]")
    if not (report.ok and blobs.ok):
        raise typer.Exit(1)


@app.command("import-stint")
def import_stint_cmd(
    archive: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A ZIP from the stint export")],
) -> None:
    """Restore a stint from its ZIP export (GET /api/stints/{id}/export?format=zip), with the same ids.
    Every SHA-256 in its manifest is checked first; accounts it names that do not exist here are
    created disabled (enable them and set a password with the users API)."""
    from api.archive import ArchiveError, import_stint
    from storage import make_store

    settings = Settings()
    engine = _engine()
    try:
        with Session(engine) as session:
            stint = import_stint(session, make_store(settings.storage_url, settings.data_dir), archive)
    except ArchiveError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    console.print(f"[green]Restored stint {stint.id} ({stint.title}).[/green]")


app.command()(cli_backup.backup)
app.command()(cli_backup.restore)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
