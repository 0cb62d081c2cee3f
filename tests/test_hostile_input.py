"""Input no client should send but anyone can: each answers a clear 4xx (or the plain answer), never a 500.

What the OpenAPI fuzzing cannot forge lives here: numbers in headers longer than ``int()`` parses
(Python refuses strings over 4300 digits), multipart boundaries beyond the parser's limit, and days
at the ends of the calendar."""

import base64
import io
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from api.config import Settings
from api.models import Stint
from tests.conftest import Person
from tests.material_files import photo

# Past Python's int() limit for decimal strings (4300 digits) and well within any server's header limit.
HUGE = "9" * 5000


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=database_url, ocr=False)


def _photo(client: TestClient, stint_team: dict[str, Any]) -> tuple[str, bytes]:
    data = photo()
    r = client.post(
        f"/api/stints/{stint_team['stint']['id']}/materials",
        files={"file": ("现场.jpg", data, "application/octet-stream")},
        headers=stint_team["researcher"].headers,
    )
    assert r.status_code == 201, r.text
    return f"/api/materials/{r.json()['id']}/content", data


def test_a_range_with_a_huge_number_is_answered_not_a_500(
    client: TestClient, stint_team: dict[str, Any]
) -> None:
    url, data = _photo(client, stint_team)
    h = stint_team["researcher"].headers
    start = client.get(url, headers={**h, "Range": f"bytes={HUGE}-"})
    assert start.status_code == 416, start.text
    assert start.headers["content-range"] == f"bytes */{len(data)}"
    assert start.json()["error"]["code"] == "range_not_satisfiable"
    end = client.get(url, headers={**h, "Range": f"bytes=10-{HUGE}"})
    assert end.status_code == 206 and end.content == data[10:]
    suffix = client.get(url, headers={**h, "Range": f"bytes=-{HUGE}"})
    assert suffix.status_code == 206 and suffix.content == data
    # Leading zeros are still the number they write.
    zeros = client.get(url, headers={**h, "Range": f"bytes={'0' * 5000}5-{'0' * 5000}9"})
    assert zeros.status_code == 206 and zeros.content == data[5:10]


def _tus(who: Person) -> dict[str, str]:
    return {**who.headers, "Tus-Resumable": "1.0.0"}


def _metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def test_tus_numbers_too_long_to_parse_are_4xx(client: TestClient, stint_team: dict[str, Any]) -> None:
    who, sid = stint_team["researcher"], stint_team["stint"]["id"]
    meta = _metadata(stint_id=sid, filename="note.txt")
    huge = client.post("/api/uploads", headers={**_tus(who), "Upload-Length": HUGE, "Upload-Metadata": meta})
    assert huge.status_code == 413, huge.text
    assert huge.headers["tus-resumable"] == "1.0.0"
    created = client.post(
        "/api/uploads", headers={**_tus(who), "Upload-Length": "5", "Upload-Metadata": meta}
    )
    assert created.status_code == 201, created.text
    patch = client.patch(
        created.headers["location"],
        content=b"hello",
        headers={**_tus(who), "Upload-Offset": HUGE, "Content-Type": "application/offset+octet-stream"},
    )
    assert patch.status_code == 409, patch.text
    assert patch.json()["error"]["code"] == "offset_mismatch"
    assert patch.headers["upload-offset"] == "0"
    # The upload is untouched: the real offset still finishes it.
    done = client.patch(
        created.headers["location"],
        content=b"hello",
        headers={
            **_tus(who),
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
            "Content-Length": "5",
        },
    )
    assert done.status_code == 204, done.text


def test_a_multipart_boundary_the_parser_refuses_is_a_400(
    client: TestClient, stint_team: dict[str, Any]
) -> None:
    sid, h = stint_team["stint"]["id"], stint_team["researcher"].headers
    boundary = "B" * 300  # python-multipart stops at 256; RFC 2046 at 70
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'.encode()
        + photo()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    r = client.post(
        f"/api/stints/{sid}/materials",
        content=body,
        headers={**h, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "bad_multipart"


@pytest.mark.parametrize(
    ("start", "end", "inside", "outside"),
    [
        ("0001-01-01", "0001-01-31", "0001-01-02", "9999-12-30"),
        ("9999-12-01", "9999-12-31", "9999-12-30", "0001-01-02"),
    ],
)
def test_day_summaries_of_a_stint_at_the_ends_of_the_calendar(
    client: TestClient,
    app: FastAPI,
    person: Callable[[str], Person],
    start: str,
    end: str,
    inside: str,
    outside: str,
) -> None:
    """A stint dated in year 1 or 9999 (accepted before stints' dates were limited to 1900-2199, so
    some may be stored): its 14 days of slack leave the calendar."""
    who = person("Researcher")
    stint = {"title": "t", "customer": "c", "purpose": "product", "start_date": start, "end_date": end}
    refused_now = client.post("/api/stints", json=stint, headers=who.headers)
    assert refused_now.status_code == 422, refused_now.text
    made = client.post(
        "/api/stints",
        json={**stint, "start_date": "2026-03-02", "end_date": "2026-03-27"},
        headers=who.headers,
    )
    sid = made.json()["id"]
    with app.state.engine.begin() as conn:  # as a stint stored before the limit
        table = Stint.__table__  # type: ignore[attr-defined]
        conn.execute(
            sa.update(table)
            .where(table.c.id == uuid.UUID(sid))
            .values(start_date=date.fromisoformat(start), end_date=date.fromisoformat(end))
        )
    ok = client.put(f"/api/stints/{sid}/days/{inside}", json={"summary": "排班"}, headers=who.headers)
    assert ok.status_code == 200, ok.text
    refused = client.put(f"/api/stints/{sid}/days/{outside}", json={"summary": "排班"}, headers=who.headers)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "day_outside_stint"
    assert error["details"]["earliest"] <= start and error["details"]["latest"] >= end
    # The same check behind a sync push: each op answered on its own, the push itself a 200.
    ops = [
        {
            "op_id": f"op-{day}",
            "type": "daily_summary",
            "id": f"{sid}:{who.id}:{day}",
            "op": "upsert",
            "data": {"summary": "调度"},
        }
        for day in (start, outside)
    ]
    push = client.post(
        "/api/sync/push", json={"ops": ops}, headers={**who.headers, "Idempotency-Key": f"k-{start}"}
    )
    assert push.status_code == 200, push.text
    results = push.json()["results"]
    assert [x["status"] for x in results] == ["applied", "rejected"]
    assert results[1]["error"]["code"] == "day_outside_stint"


@pytest.mark.parametrize("q", ["date:>9999-12-31", "日期:>9999-12", "date:<0001-01-01", "date:<0001-01"])
def test_a_date_filter_past_the_ends_of_the_calendar_is_a_400(
    client: TestClient, stint_team: dict[str, Any], q: str
) -> None:
    r = client.get("/api/search", params={"q": f"排班 {q}"}, headers=stint_team["manager"].headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_query"
    assert "no day" in r.json()["error"]["message"].lower()


def _with_length(who: Person, content_type: str, length: str) -> dict[bytes, bytes]:
    return {
        **{k.encode(): v.encode() for k, v in who.headers.items()},
        b"Content-Type": content_type.encode(),
        b"Content-Length": length.encode(),
    }


def test_a_content_length_too_long_to_parse_is_read_not_a_500(
    client: TestClient, stint_team: dict[str, Any]
) -> None:
    """Such a header passes uvicorn's parser (httptools) when its digits are leading zeros."""
    sid, manager = stint_team["stint"]["id"], stint_team["manager"]
    body = '{"title": "排班", "statement": "s"}'.encode()
    url = f"/api/stints/{sid}/insights"
    padded = "0" * 5000 + str(len(body))
    r = client.post(url, content=body, headers=_with_length(manager, "application/json", padded))
    assert r.status_code == 201, r.text
    r = client.post(url, content=body, headers=_with_length(manager, "application/json", HUGE))
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large", r.text
    form = (
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\n'
        + photo()
        + b"\r\n--B--\r\n"
    )
    multipart = "multipart/form-data; boundary=B"
    url = f"/api/stints/{sid}/materials"
    r = client.post(url, content=form, headers=_with_length(manager, multipart, "0" * 5000 + str(len(form))))
    assert r.status_code == 201, r.text
    r = client.post(url, content=form, headers=_with_length(manager, multipart, HUGE))
    assert r.status_code == 413, r.text


def test_an_action_plan_with_control_characters_exports_to_xlsx(
    client: TestClient, stint_team: dict[str, Any]
) -> None:
    """Text fields refuse only NUL; XML (and so XLSX) cannot hold the other C0 controls but tab and newlines."""
    sid, h = stint_team["stint"]["id"], stint_team["manager"].headers
    insight = client.post(
        f"/api/stints/{sid}/insights", json={"title": "排班\x0b知识", "statement": "s"}, headers=h
    ).json()
    action = {"title": "\x01=1+1", "description": "第一行\x1b[31m\n第二行", "insight_ids": [insight["id"]]}
    assert client.post(f"/api/stints/{sid}/actions", json=action, headers=h).status_code == 201
    r = client.get(f"/api/stints/{sid}/export", params={"format": "xlsx", "lang": "en"}, headers=h)
    assert r.status_code == 200, r.text
    sheet = load_workbook(io.BytesIO(r.content)).active
    row = [cell.value for cell in sheet[2]]
    assert row[1] == "'=1+1"  # the control character goes, and what follows is still not a formula
    assert row[2] == "第一行[31m\n第二行"
    assert row[11] == "排班知识"
