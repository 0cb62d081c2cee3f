"""The ``fieldbook`` command: serve, migrate, manage accounts."""

import getpass
import sys
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.console import Console
from sqlmodel import Session, select

from api import migrations
from api.config import Settings
from api.db import make_engine
from api.errors import AppError
from api.models import User
from api.users import create_user

app = typer.Typer(help="Fieldbook: the field journal for immersive customer research.", no_args_is_help=True)
user_app = typer.Typer(help="Manage accounts.", no_args_is_help=True)
app.add_typer(user_app, name="user")
console = Console(stderr=True)


def _engine() -> sa.Engine:
    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return make_engine(settings.sqlalchemy_url)


@app.command()
def migrate() -> None:
    """Upgrade the configured database to the newest schema."""
    engine = _engine()
    migrations.upgrade(engine)
    engine.dispose()
    console.print("[green]Database is at the newest schema.[/green]")


def _welcome(engine: sa.Engine, host: str, port: int) -> None:
    with Session(engine) as session:
        has_users = session.exec(select(User.id).limit(1)).first() is not None
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
    console.print(f"\n[bold]Fieldbook[/bold] is starting at {url}  (API docs: {url}/docs)")
    if not has_users:
        console.print(
            "[yellow]No accounts yet.[/yellow] Create the first one (you will be asked for a password):\n"
            f"    [bold]{sys.argv[0]} user add you@example.com --name 'Your Name' --admin[/bold]\n"
            f"then open {url}/docs, press Authorize and sign in with that e-mail and password.\n"
        )
    else:
        console.print(f"Sign in at {url}/docs with your e-mail and password (Authorize button).\n")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Migrate to the newest schema, then serve the API and the app."""
    import uvicorn

    engine = _engine()
    migrations.upgrade(engine)
    _welcome(engine, host, port)
    engine.dispose()
    uvicorn.run(
        "api.main:create_app", factory=True, host=host, port=port, workers=workers, proxy_headers=True
    )


def _read_password() -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        console.print("[red]The passwords differ.[/red]")
        raise typer.Exit(2)
    return first


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


def main() -> None:
    app()
