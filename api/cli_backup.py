"""``fieldbook backup`` and ``fieldbook restore`` (registered on the command in ``api/cli.py``)."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from api.config import Settings

console = Console(stderr=True)


def backup(dest: Annotated[Path, typer.Argument(help="A new or empty directory")]) -> None:
    """Write a consistent backup of the database and every stored file a material needs to DEST;
    safe while the server runs. It holds everything, password and token hashes included: keep it
    as protected as the server (it is written readable by its owner only). Exit status 2: written,
    but some stored files were missing or damaged (listed)."""
    from api.backup import backup as run_backup
    from api.backup_database import BackupError
    from storage import make_store

    settings = Settings()
    try:
        done = run_backup(settings, make_store(settings.storage_url, settings.data_dir), dest)
    except BackupError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    m = done.manifest
    console.print(
        f"[green]Backup written to {done.path}:[/green] {m.database.kind} at revision "
        f"{m.database.alembic_revision}, {done.rows} row(s), {len(m.blobs)} blob(s), "
        f"{done.blob_bytes + m.database.size} byte(s), {done.seconds:.1f}s."
    )
    for line in done.problems:
        console.print(f"[red]{line}[/red]")
    if done.problems:
        raise typer.Exit(2)  # written, but not everything could be copied


def restore(
    src: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="A directory from `fieldbook backup`")
    ],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a database that already holds data")
    ] = False,
) -> None:
    """Restore a backup into the configured database and blob store, then migrate to the newest
    schema and rebuild the search index. Every SHA-256 is checked before anything changes.
    Stop the server using this database and data directory first."""
    from api.backup import restore as run_restore
    from api.backup_database import BackupError
    from storage import make_store

    settings = Settings()
    try:
        done = run_restore(settings, make_store(settings.storage_url, settings.data_dir), src, force=force)
    except BackupError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    m = done.manifest
    console.print(
        f"[green]Restored {done.rows} row(s), {len(m.blobs)} blob(s), {done.blob_bytes} byte(s) of files "
        f"from {m.created_at:%Y-%m-%d %H:%M} UTC[/green] (revision {m.database.alembic_revision} → "
        f"{done.revision_after}); indexed {done.indexed} record(s) in {done.seconds:.1f}s."
    )
    for line in done.problems:
        console.print(f"[red]{line}[/red]")
