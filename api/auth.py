"""Signing in, sessions (one per device), the current user."""

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Annotated, NoReturn

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from api import security
from api.config import Settings
from api.db import SessionDep, begin_reading, end_reads, utcnow
from api.errors import Forbidden, Invalid, NotAuthenticated, NotFound, TooManyRequests, responses
from api.models import AuthSession, LoginThrottle, User

router = APIRouter(prefix="/api", tags=["auth"])
bearer_token = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)
SESSION_COOKIE = "fieldbook_session"
CSRF_HEADER = "X-Fieldbook-CSRF"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Writing last_used_at on every request would turn every read into a write.
TOUCH_EVERY = timedelta(minutes=5)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_at: datetime
    session_id: uuid.UUID


class SessionOut(BaseModel):
    id: uuid.UUID
    user_agent: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    current: bool


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    is_admin: bool
    is_active: bool
    created_at: datetime


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=security.MAX_PASSWORD_LENGTH)
    new_password: str = Field(
        min_length=security.MIN_PASSWORD_LENGTH, max_length=security.MAX_PASSWORD_LENGTH
    )


class SignedIn(BaseModel):
    user: User
    session: AuthSession

    model_config = {"arbitrary_types_allowed": True}


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def normalise_email(email: str) -> str:
    return email.strip().lower()


def end_sessions(session: Session, user_id: uuid.UUID, *, keep: uuid.UUID | None = None) -> None:
    """Revoke every live session of a user (disabled account, new password), except ``keep``."""
    stmt = (
        sa.update(AuthSession)
        .where(col(AuthSession.user_id) == user_id, col(AuthSession.revoked_at).is_(None))
        .values(revoked_at=utcnow())
    )
    if keep is not None:
        stmt = stmt.where(col(AuthSession.id) != keep)
    session.execute(stmt)


async def credentials(request: Request, bearer: Annotated[str | None, Depends(bearer_token)]) -> str:
    """The request's session token (bearer, else the cookie): 401 without one, 403 for a cookie-signed
    write without the CSRF header. No database: async, no threadpool call."""
    token = bearer or request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotAuthenticated()
    if not bearer and request.method not in _SAFE_METHODS and request.headers.get(CSRF_HEADER) != "1":
        # A cookie rides along on any request the browser makes; a custom header cannot be set
        # cross-site without a CORS preflight we never grant.
        raise Forbidden(
            f"Send the {CSRF_HEADER}: 1 header with cookie-signed requests.", code="csrf_required"
        )
    return token


CredentialsDep = Annotated[str, Depends(credentials)]


# Built once: constructing the expression cost a capture request more than compiling it (cached).
_LOOK_UP = (
    select(AuthSession, User)
    .join(User, User.id == AuthSession.user_id)  # type: ignore[arg-type]
    .where(AuthSession.token_hash == sa.bindparam("digest"))
)


def look_up(session: Session, token: str) -> SignedIn:
    """The live session of ``token`` and its user, read in the session's transaction (begun by the
    caller, see begin_reading); 401 unless both are live."""
    found = session.exec(_LOOK_UP, params={"digest": security.token_digest(token)}).first()
    if found is None:
        raise_not_signed_in()
    return live(*found)


def raise_not_signed_in() -> NoReturn:
    raise NotAuthenticated("Your session is not valid; sign in again.", code="invalid_token")


def live(auth: AuthSession, user: User) -> SignedIn:
    """``auth`` and ``user`` as signed in; 401 unless both are live."""
    if auth.revoked_at is not None or auth.expires_at <= utcnow() or not user.is_active:
        raise NotAuthenticated("Your session has ended; sign in again.", code="session_ended")
    return SignedIn(user=user, session=auth)


def touch(session: Session, auth: AuthSession) -> None:
    """Note when the device was last seen, at most every few minutes (after the reads have ended)."""
    now = utcnow()
    if now - auth.last_used_at > TOUCH_EVERY:
        auth.last_used_at = now
        session.add(auth)
        try:
            session.commit()
        except sa.exc.OperationalError:
            # Only a "last seen" hint: a busy database must not fail the request.
            session.rollback()


def remember(request: Request, signed: SignedIn) -> SignedIn:
    """Keep the check for the rest of this request only: a later dependency asking again (a route
    with both a stint role and the current user) is answered without a second query."""
    request.state.signed_in = signed
    return signed


def remembered(request: Request) -> SignedIn | None:
    signed: SignedIn | None = getattr(request.state, "signed_in", None)
    return signed


def _check(request: Request, session: Session, token: str) -> SignedIn:
    begin_reading(session)  # the check only reads; the rare touch below writes on its own
    signed = look_up(session, token)
    end_reads(session)  # no transaction left open across FastAPI's threadpool calls (see end_reads)
    touch(session, signed.session)
    return remember(request, signed)


async def signed_in(request: Request, session: SessionDep, token: CredentialsDep) -> SignedIn:
    """The signed-in user and device, checked against the database on every request (a revoked
    session or disabled account is refused at once); once per request."""
    if (signed := remembered(request)) is not None:
        return signed
    return await run_in_threadpool(_check, request, session, token)


SignedInDep = Annotated[SignedIn, Depends(signed_in)]


async def current_user(signed: SignedInDep) -> User:
    # async: a plain attribute read, not worth a threadpool call per request
    return signed.user


CurrentUser = Annotated[User, Depends(current_user)]


# Per account, and per client address with a wider allowance (many people may share an office NAT),
# so one address cannot try a password against many accounts.
_PER_ADDRESS_FACTOR = 10


def _throttle_keys(email: str, request: Request) -> list[tuple[str, int]]:
    address = request.client.host if request.client else "-"
    return [
        (hashlib.sha256(normalise_email(email).encode()).hexdigest(), 1),
        (hashlib.sha256(f"address:{address}".encode()).hexdigest(), _PER_ADDRESS_FACTOR),
    ]


def _check_throttle(session: Session, key: str, now: datetime) -> None:
    row = session.get(LoginThrottle, key)
    if row is not None and row.locked_until is not None and row.locked_until > now:
        retry = max(1, int((row.locked_until - now).total_seconds()) + 1)
        raise TooManyRequests("Too many failed sign-ins; wait and try again.", retry_after=retry)


def _record_failure(session: Session, settings: Settings, keys: list[tuple[str, int]], now: datetime) -> None:
    window = timedelta(seconds=settings.login_window_seconds)
    for key, factor in keys:
        row = session.get(LoginThrottle, key)
        if row is None or now - row.window_started_at > window:
            row = row or LoginThrottle(key=key, window_started_at=now)
            row.failures, row.window_started_at, row.locked_until = 0, now, None
        row.failures += 1
        if row.failures >= settings.login_max_failures * factor:
            row.locked_until = now + window
        session.add(row)
    session.commit()


def _authenticate(
    request: Request, session: Session, username: str, password: str
) -> tuple[str, AuthSession]:
    """Check a password and open a session; the token is returned once and stored only as a hash."""
    settings = settings_of(request)
    now = utcnow()
    keys = _throttle_keys(username, request)
    for key, _factor in keys:
        _check_throttle(session, key, now)
    email = normalise_email(username)
    # PostgreSQL cannot even compare a string holding NUL: no such account can exist.
    user = None if "\x00" in email else session.exec(select(User).where(User.email == email)).first()
    # The hash is checked even for an unknown e-mail, so timing does not tell which failed.
    ok = security.verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.is_active:
        _record_failure(session, settings, keys, now)
        raise NotAuthenticated("E-mail or password is incorrect.", code="invalid_credentials")
    # Success clears the account's count; the address keeps its own.
    throttle = session.get(LoginThrottle, keys[0][0])
    if throttle is not None:
        session.delete(throttle)
    if security.needs_rehash(user.password_hash):
        user.password_hash = security.hash_password(password)
        session.add(user)
    return open_session(
        session, user.id, timedelta(hours=settings.session_ttl_hours), request.headers.get("user-agent", "")
    )


def open_session(
    session: Session, user_id: uuid.UUID, lifetime: timedelta, user_agent: str = ""
) -> tuple[str, AuthSession]:
    """A new signed-in device for ``user_id`` (committed). The token is returned once; only its
    SHA-256 is stored."""
    token = security.new_token()
    auth = AuthSession(
        user_id=user_id,
        token_hash=security.token_digest(token),
        user_agent=user_agent[:300],
        expires_at=utcnow() + lifetime,
    )
    session.add(auth)
    session.commit()
    return token, auth


@router.post("/auth/token", response_model=TokenOut, responses=responses(401, 422, 429))
def sign_in(
    request: Request,
    session: SessionDep,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
) -> TokenOut:
    """Sign in with e-mail (as `username`) and password; returns an opaque bearer token (API clients,
    the /docs Authorize button)."""
    token, auth = _authenticate(request, session, form.username, form.password)
    return TokenOut(access_token=token, expires_at=auth.expires_at, session_id=auth.id)


class CookieSignIn(BaseModel):
    model_config = {"extra": "forbid"}

    email: str = Field(max_length=320)
    password: str = Field(max_length=security.MAX_PASSWORD_LENGTH)


class CookieSession(BaseModel):
    session_id: uuid.UUID
    expires_at: datetime
    user: UserOut


def _cookie_is_secure(request: Request) -> bool:
    # Browsers accept Secure cookies from http://localhost and 127.0.0.1; elsewhere only over TLS.
    return request.url.scheme == "https" or request.url.hostname in ("localhost", "127.0.0.1", "::1")


@router.post("/auth/session", response_model=CookieSession, responses=responses(401, 422, 429))
def sign_in_with_cookie(
    body: CookieSignIn, request: Request, response: Response, session: SessionDep
) -> CookieSession:
    """Sign in from the browser app: the session token goes into an HttpOnly, SameSite=Strict cookie
    that no script can read. Writes signed by the cookie need the header `X-Fieldbook-CSRF: 1`."""
    token, auth = _authenticate(request, session, body.email, body.password)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int((auth.expires_at - utcnow()).total_seconds()),
        httponly=True,
        secure=_cookie_is_secure(request),
        samesite="strict",
        path="/",
    )
    user = session.get(User, auth.user_id)
    assert user is not None
    return CookieSession(
        session_id=auth.id,
        expires_at=auth.expires_at,
        user=UserOut.model_validate(user, from_attributes=True),
    )


@router.post("/auth/logout", status_code=204, responses=responses(401, 403))
def sign_out(session: SessionDep, signed: SignedInDep) -> Response:
    """End this device's session (and clear the browser's session cookie)."""
    signed.session.revoked_at = utcnow()
    session.add(signed.session)
    session.commit()
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/auth/sessions", response_model=list[SessionOut], responses=responses(401))
def list_sessions(session: SessionDep, signed: SignedInDep) -> list[SessionOut]:
    """Devices where you are signed in."""
    rows = session.exec(
        select(AuthSession)
        .where(
            AuthSession.user_id == signed.user.id,
            AuthSession.revoked_at.is_(None),  # type: ignore[union-attr]
            AuthSession.expires_at > utcnow(),
        )
        .order_by(AuthSession.last_used_at.desc())  # type: ignore[attr-defined]
    ).all()
    return [
        SessionOut(
            **row.model_dump(exclude={"user_id", "token_hash", "revoked_at"}),
            current=row.id == signed.session.id,
        )
        for row in rows
    ]


@router.delete("/auth/sessions/{session_id}", status_code=204, responses=responses(401, 403, 404, 422))
def revoke_session(session_id: uuid.UUID, session: SessionDep, signed: SignedInDep) -> Response:
    """Sign a device out (a lost phone). Takes effect on its next request."""
    auth = session.get(AuthSession, session_id)
    if auth is None or auth.user_id != signed.user.id or auth.revoked_at is not None:
        raise NotFound("No such session.")
    auth.revoked_at = utcnow()
    session.add(auth)
    session.commit()
    return Response(status_code=204)


@router.get("/me", response_model=UserOut, responses=responses(401))
def me(user: CurrentUser) -> User:
    """The signed-in user."""
    return user


@router.post("/me/password", status_code=204, responses=responses(401, 403, 422))
def change_password(body: PasswordChange, session: SessionDep, signed: SignedInDep) -> Response:
    """Change your password; every other device is signed out."""
    if not security.verify_password(signed.user.password_hash, body.current_password):
        raise Invalid("The current password is incorrect.", code="wrong_password")
    signed.user.password_hash = security.hash_password(body.new_password)
    session.add(signed.user)
    end_sessions(session, signed.user.id, keep=signed.session.id)
    session.commit()
    return Response(status_code=204)
