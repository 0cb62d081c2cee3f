"""The share-link holder's column of the permission matrix, and what lies outside their link.

The holder has the link's token and no account. They present it as a bearer token on every route
(it is no session: 401 on every member route) and get what the link shows on the public routes; what
lies outside the link (other photos, other stints, dead links) is the public routes' one 404."""

import secrets
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlmodel import Session

from api.db import utcnow
from api.debrief_models import ShareLink
from tests.conftest import STINT
from tests.test_permissions import HOLDER, MATRIX, PHOTO, Ctx, _api_routes, _call, _context

# What lies outside a link, asked for with a token: the public routes' one 404 (expired and revoked
# links answer like unknown ones). Every public route needs cases here.
Outside = tuple[tuple[str, str], str, Callable[[Ctx, dict[str, str]], str]]
PUBLIC_PHOTO = ("GET", "/api/public/{token}/materials/{material_id}")


def _photo_via(token_key: str | None, photo_key: str | None) -> Callable[[Ctx, dict[str, str]], str]:
    def path(c: Ctx, o: dict[str, str]) -> str:
        token = o[token_key] if token_key else c.debrief["token"]
        return f"/api/public/{token}/materials/{o[photo_key] if photo_key else c.materials['material']}"

    return path


def _dead_link(template: str, which: str) -> Outside:
    def path(c: Ctx, o: dict[str, str]) -> str:
        return template.replace("{token}", o[which]).replace("{material_id}", c.materials["material"])

    return ("GET", template), f"an {which} link", path


OUTSIDE_THE_LINK: list[Outside] = [
    (PUBLIC_PHOTO, "a photo of the stint no insight uses", _photo_via(None, "unused_photo")),
    (PUBLIC_PHOTO, "the photo of an insight the link does not show", _photo_via(None, "unshared_photo")),
    (PUBLIC_PHOTO, "a photo of another stint", _photo_via(None, "other_photo")),
    (
        PUBLIC_PHOTO,
        "the stint's id as a photo",
        lambda c, o: f"/api/public/{c.debrief['token']}/materials/{c.sid}",
    ),
    (PUBLIC_PHOTO, "the shared photo through a link without photos", _photo_via("no_photos", None)),
    (PUBLIC_PHOTO, "the shared photo through another stint's link", _photo_via("other_token", None)),
    *(
        _dead_link(template, which)
        for template in ("/api/public/{token}", "/s/{token}", PUBLIC_PHOTO[1])
        for which in ("expired", "revoked", "unknown")
    ),
]


def _outside_records(app, client, t: dict[str, Any], ctx: Ctx) -> dict[str, str]:
    """Beside the link of ``ctx``: an unused photo, an insight made after the link (so not in it),
    another stint with its own shared photo, a link without photos, an expired and a revoked link."""
    sid, r, m = ctx.sid, t["researcher"].headers, t["manager"].headers

    def upload(stint: str, headers: dict[str, str]) -> str:
        made = client.post(
            f"/api/stints/{stint}/materials", files={"file": ("白板.jpg", PHOTO)}, headers=headers
        )
        assert made.status_code == 201, made.text
        return str(made.json()["id"])

    def share(stint: str, **body: Any) -> dict[str, str]:
        made = client.post(f"/api/stints/{stint}/shares", json=body, headers=m)
        assert made.status_code == 201, made.text
        return dict(made.json())

    unshared = upload(sid, r)
    late = {"title": "后来的洞见", "statement": "不在链接里", "evidence": [{"material_id": unshared}]}
    assert client.post(f"/api/stints/{sid}/insights", json=late, headers=r).status_code == 201
    other_sid = client.post("/api/stints", json=STINT, headers=m).json()["id"]
    other_photo = upload(other_sid, m)
    other_insight = {"title": "别处", "statement": "别处", "evidence": [{"material_id": other_photo}]}
    assert client.post(f"/api/stints/{other_sid}/insights", json=other_insight, headers=m).status_code == 201
    expired, revoked = share(sid, include_photos=True), share(sid, include_photos=True)
    with Session(app.state.engine) as session:
        link = session.get(ShareLink, uuid.UUID(expired["id"]))
        assert link is not None
        link.expires_at = utcnow() - timedelta(seconds=1)
        session.add(link)
        session.commit()
    assert client.delete(f"/api/shares/{revoked['id']}", headers=m).status_code == 204
    return {
        "unused_photo": upload(sid, r),
        "unshared_photo": unshared,
        "other_photo": other_photo,
        "other_token": share(other_sid, include_photos=True)["token"],
        "no_photos": share(sid, include_photos=False)["token"],
        "expired": expired["token"],
        "revoked": revoked["token"],
        "unknown": secrets.token_urlsafe(32),
    }


def test_share_link_holder(app, client, stint_team, person):
    """The holder's column for every route, then everything outside the link, in one world: the
    holder can change nothing, so the cases do not disturb each other (and the run stays short)."""
    ctx = _context(client, stint_team, person, None)
    outside = _outside_records(app, client, stint_team, ctx)
    as_holder = {"Authorization": f"Bearer {ctx.debrief['token']}"}  # the only secret they have
    wrong = [
        f"{route}: {r.status_code}, expected {expected[HOLDER]}"
        for route, (_, expected) in sorted(MATRIX.items())
        if (r := _call(client, route, ctx, as_holder)).status_code != expected[HOLDER]
    ]
    for route, what, path in OUTSIDE_THE_LINK:
        r = client.get(path(ctx, outside), headers=as_holder)
        html = route[1].startswith("/s/")
        if r.status_code != 404 or (not html and r.json()["error"]["code"] != "share_not_found"):
            wrong.append(f"{what} ({route[1]}): {r.status_code}, expected 404")
    assert wrong == []
    shown = client.get(f"/api/public/{ctx.debrief['token']}").json()
    assert [i["title"] for i in shown["insights"]] == ["洞见"]  # not the later insight, not the other stint's


def test_every_public_route_has_cases_outside_the_link(settings):
    public = {route for route in _api_routes(settings) if "{token}" in route[1]}
    assert public - {route for route, *_ in OUTSIDE_THE_LINK} == set(), "add OUTSIDE_THE_LINK cases"
