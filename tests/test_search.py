"""Search: Chinese/English/mixed queries, snippets, facets, filters, permissions, the query
language, freshness after writes, reindex while searching, recovery of a lost or corrupt index,
and ``fieldbook check`` — against a real index on disk and the real indexer thread."""

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session
from typer.testing import CliRunner

from api import migrations, search_indexer
from api.cli import app as cli_app
from api.db import make_engine
from api.main import create_app
from api.models import Observation
from api.search_analysis import clause_parts, snippet
from api.search_check import check
from api.search_docs import SearchTask, record_index_tasks
from api.search_index import IndexStore
from api.search_indexer import Indexer, indexer_lock
from api.search_query import QueryError, parse_query
from tests.conftest import STINT

WAIT = 20.0  # generous: the indexer usually catches up in well under a second


def wait_for(probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value {value!r})")
        time.sleep(0.05)


def settle(app: Any) -> None:
    """Wait until every queued index task has been applied (tasks go only after the commit)."""

    def empty() -> bool:
        with app.state.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(SearchTask)).scalar_one() == 0

    wait_for(empty)


def search(client: TestClient, who: Any, **params: Any) -> dict[str, Any]:
    r = client.get("/api/search", params=params, headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()


def observe(client: TestClient, who: Any, stint_id: str, text: str, **fields: Any) -> dict[str, Any]:
    r = client.post(
        f"/api/stints/{stint_id}/observations", json={"text": text, **fields}, headers=who.headers
    )
    assert r.status_code == 201, r.text
    return r.json()


@pytest.fixture
def journal(client, stint_team, app):  # type: ignore[no-untyped-def]
    t = stint_team
    sid = t["stint"]["id"]
    r, m = t["researcher"], t["manager"]
    obs = {
        "excel": observe(
            client,
            r,
            sid,
            "调度员每天早上手工排班，用 Excel 做计划表",
            kind="behaviour",
            tags=["排班", "excel"],
            observed_at="2026-03-03T09:00:00+08:00",
        ),
        "quote": observe(
            client,
            r,
            sid,
            "财务在月底对账时抱怨系统数据不准",
            kind="quote",
            quote="这个报表我每天要做两个小时",
            speaker_role="财务经理",
            tags=["对账", "痛点"],
            observed_at="2026-03-05T15:00:00+08:00",
        ),
        "english": observe(
            client,
            m,
            sid,
            "The dispatchers reconcile invoices twice, once in SAP and once in a spreadsheet.",
            kind="process",
            dimension="organisation",
            observed_at="2026-03-06T10:00:00+08:00",
        ),
        "beijing": observe(
            client,
            m,
            sid,
            "北京大学的研究团队来参观 <script>alert(1)</script> 仓库",
            kind="note",
            observed_at="2026-03-10T10:00:00+08:00",
        ),
        "fullwidth": observe(
            client,
            r,
            sid,
            "他们导出ＥＸＣＥＬ表格给老板",
            kind="note",
            observed_at="2026-03-11T10:00:00+08:00",
        ),
    }
    settle(app)
    return {**t, "sid": sid, "obs": obs}


def ids(result: dict[str, Any]) -> set[str]:
    return {h["id"] for h in result["hits"]}


def test_chinese_two_character_word_inside_longer_run(client, journal):
    j = journal
    res = search(client, j["researcher"], q="排班")
    assert ids(res) == {j["obs"]["excel"]["id"]}
    assert res["total"] == 1
    assert "<mark>排班</mark>" in res["hits"][0]["snippet"]
    # a substring crossing word boundaries, and the middle of a name (京大 in 北京大学)
    assert ids(search(client, j["researcher"], q="京大")) == {j["obs"]["beijing"]["id"]}
    assert ids(search(client, j["researcher"], q="北京大学")) == {j["obs"]["beijing"]["id"]}
    assert search(client, j["researcher"], q="大学北京")["total"] == 0


def test_three_and_four_character_substrings_and_single_character(client, journal):
    j = journal
    assert ids(search(client, j["researcher"], q="手工排班")) == {j["obs"]["excel"]["id"]}
    assert ids(search(client, j["researcher"], q="抱怨系统")) == {j["obs"]["quote"]["id"]}
    # the characters of 手工排班 occur, but not in this order
    assert search(client, j["researcher"], q="排班手工")["total"] == 0
    one = search(client, j["researcher"], q="班")
    assert ids(one) == {j["obs"]["excel"]["id"]}
    assert "<mark>班</mark>" in one["hits"][0]["snippet"]
    # the last character of a run is found too (…的报表 / 两个小时 ends in 时)
    assert j["obs"]["quote"]["id"] in ids(search(client, j["researcher"], q="时"))


def test_quote_and_speaker_role_are_searched(client, journal):
    j = journal
    res = search(client, j["researcher"], q="两个小时")
    assert ids(res) == {j["obs"]["quote"]["id"]}
    assert res["hits"][0]["snippet_field"] == "quote"
    assert ids(search(client, j["researcher"], q="财务经理")) == {j["obs"]["quote"]["id"]}


def test_english_is_stemmed_and_case_folded(client, journal):
    j = journal
    want = {j["obs"]["english"]["id"]}
    assert ids(search(client, j["viewer"], q="dispatcher")) == want
    assert ids(search(client, j["viewer"], q="INVOICE")) == want
    assert ids(search(client, j["viewer"], q="reconciled")) == want
    hit = search(client, j["viewer"], q="invoice")["hits"][0]
    assert "<mark>invoices</mark>" in hit["snippet"]


def test_full_width_and_half_width_are_equal(client, journal):
    j = journal
    assert ids(search(client, j["viewer"], q="excel")) == {
        j["obs"]["excel"]["id"],
        j["obs"]["fullwidth"]["id"],
    }
    assert j["obs"]["excel"]["id"] in ids(search(client, j["viewer"], q="ｅｘｃｅｌ"))
    snippet_html = next(
        h for h in search(client, j["viewer"], q="excel")["hits"] if "ＥＸＣＥＬ" in h["snippet"]
    )
    assert "<mark>ＥＸＣＥＬ</mark>" in snippet_html["snippet"]


def test_mixed_query_and_phrase_and_exclusion(client, journal):
    j = journal
    assert ids(search(client, j["viewer"], q="Excel 排班")) == {j["obs"]["excel"]["id"]}
    assert ids(search(client, j["viewer"], q='"用 Excel 做计划"')) == {j["obs"]["excel"]["id"]}
    assert search(client, j["viewer"], q='"Excel 用"')["total"] == 0
    assert ids(search(client, j["viewer"], q="excel -排班")) == {j["obs"]["fullwidth"]["id"]}
    assert ids(search(client, j["viewer"], q='excel -"手工排班"')) == {j["obs"]["fullwidth"]["id"]}


def test_snippets_escape_everything_but_marks(client, journal):
    j = journal
    hit = search(client, j["viewer"], q="仓库")["hits"][0]
    assert hit["id"] == j["obs"]["beijing"]["id"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hit["snippet"]
    assert "<script>" not in hit["snippet"]
    assert hit["snippet"].count("<mark>") == 1 and "<mark>仓库</mark>" in hit["snippet"]


def test_tag_filters_read_traditional_as_simplified(client, journal, app):
    """Tags stay as their author typed them; a filter in the other script finds them too."""
    j = journal
    v, o = j["viewer"], j["obs"]
    taiwan = observe(client, j["researcher"], j["sid"], "月底的報表靠人工彙總", tags=["報表", "對賬"])
    settle(app)
    assert ids(search(client, v, q="tag:痛點")) == {o["quote"]["id"]}
    assert ids(search(client, v, q="", tag="痛點")) == {o["quote"]["id"]}
    assert ids(search(client, v, q="tag:报表")) == {taiwan["id"]}
    assert ids(search(client, v, q="tag:报表 tag:对账")) == {taiwan["id"]}  # each tag, either script
    assert ids(search(client, v, q="tag:對賬")) == {taiwan["id"], o["quote"]["id"]}
    assert o["quote"]["id"] not in ids(search(client, v, q="-tag:痛點"))
    assert taiwan["id"] not in ids(search(client, v, q="-tag:报表"))
    assert search(client, v, q="tag:报表 tag:痛点")["total"] == 0
    facets = {x["value"]: x["count"] for x in search(client, v, q="tag:对账")["facets"]["tags"]}
    assert facets["報表"] == 1 and facets["对账"] == 1  # each as written


def test_filters_by_parameters_and_query_language(client, journal):
    j = journal
    v, o = j["viewer"], j["obs"]
    assert ids(search(client, v, q="", kind="quote")) == {o["quote"]["id"]}
    assert ids(search(client, v, q="kind:quote")) == {o["quote"]["id"]}
    assert ids(search(client, v, q="tag:痛点")) == {o["quote"]["id"]}
    assert ids(search(client, v, q="", tag="#Excel")) == {o["excel"]["id"]}
    assert ids(search(client, v, q="-tag:excel kind:note")) == {o["beijing"]["id"], o["fullwidth"]["id"]}
    assert ids(search(client, v, q="", author=j["manager"].email)) == {o["english"]["id"], o["beijing"]["id"]}
    assert ids(search(client, v, q="author:王经理")) == {o["english"]["id"], o["beijing"]["id"]}
    assert ids(search(client, v, q="", dimension="organisation")) == {o["english"]["id"]}
    assert ids(search(client, v, q="date:2026-03-05..2026-03-06")) == {o["quote"]["id"], o["english"]["id"]}
    assert ids(search(client, v, q="", **{"from": "2026-03-10"})) == {
        o["beijing"]["id"],
        o["fullwidth"]["id"],
    }
    assert ids(search(client, v, q="date:<2026-03-05")) == {o["excel"]["id"]}
    assert ids(search(client, v, q="日期：2026-03-03")) == {o["excel"]["id"]}
    assert search(client, v, q="author:nobody@example.com")["total"] == 0


def test_hypothesis_filter(client, journal):
    j = journal
    sid = j["sid"]
    h = client.post(
        f"/api/stints/{sid}/hypotheses", json={"statement": "调度靠手工"}, headers=j["manager"].headers
    ).json()
    linked = observe(client, j["researcher"], sid, "调度又在手工改计划", hypothesis_ids=[h["id"]])
    wait_for(lambda: search(client, j["viewer"], q="", hypothesis=h["id"])["total"] == 1)
    assert ids(search(client, j["viewer"], q="", hypothesis=h["id"])) == {linked["id"]}


def test_a_deleted_hypothesis_is_no_longer_a_filter(client, journal, app):
    """Deleting a hypothesis re-indexes its observations: ?hypothesis=<id> finds nothing after it, the
    observations are still found otherwise and by the hypotheses they still have, and the index
    agrees with the database (``fieldbook check``), also after a rebuild."""
    j = journal
    sid, m = j["sid"], j["manager"]
    gone, kept = (
        client.post(f"/api/stints/{sid}/hypotheses", json={"statement": s}, headers=m.headers).json()
        for s in ("调度靠手工", "财务不信系统")
    )
    both = observe(
        client, j["researcher"], sid, "调度又在手工改计划", hypothesis_ids=[gone["id"], kept["id"]]
    )
    only = observe(client, j["researcher"], sid, "计划员周末加班改表", hypothesis_ids=[gone["id"]])
    settle(app)
    assert ids(search(client, j["viewer"], q="", hypothesis=gone["id"])) == {both["id"], only["id"]}
    assert client.delete(f"/api/hypotheses/{gone['id']}", headers=m.headers).status_code == 204
    settle(app)
    assert search(client, j["viewer"], q="", hypothesis=gone["id"])["total"] == 0
    assert ids(search(client, j["viewer"], q="", hypothesis=kept["id"])) == {both["id"]}
    assert ids(search(client, j["viewer"], q="加班")) == {only["id"]}
    assert check(app.state.search_store, app.state.engine).ok
    # An observation edited since is indexed the same way (from the database, not from the request).
    r = client.patch(
        f"/api/observations/{only['id']}",
        json={"text": "计划员周末加班改排班表"},
        headers={**j["researcher"].headers, "If-Match": f'"{only["version"]}"'},
    )
    assert r.status_code == 200, r.text
    settle(app)
    assert search(client, j["viewer"], q="", hypothesis=gone["id"])["total"] == 0
    assert check(app.state.search_store, app.state.engine).ok


def test_facets_count_every_match(client, journal):
    j = journal
    res = search(client, j["viewer"], q="", per_page=1)
    assert res["total"] == 5 and len(res["hits"]) == 1
    f = {name: {x["value"]: x["count"] for x in values} for name, values in res["facets"].items()}
    assert f["kinds"] == {"behaviour": 1, "quote": 1, "process": 1, "note": 2}
    assert f["tags"] == {"排班": 1, "excel": 1, "对账": 1, "痛点": 1}
    assert f["types"] == {"observation": 5}
    assert f["stints"] == {j["sid"]: 5}
    assert f["authors"] == {j["researcher"].id: 3, j["manager"].id: 2}
    assert f["days"]["2026-03-05"] == 1 and sum(f["days"].values()) == 5
    labels = {x["value"]: x["label"] for x in res["facets"]["authors"]}
    assert labels[j["manager"].id] == "王经理"
    stint_label = res["facets"]["stints"][0]["label"]
    assert stint_label == STINT["title"]
    narrowed = search(client, j["viewer"], q="excel")
    assert {x["value"]: x["count"] for x in narrowed["facets"]["kinds"]} == {"behaviour": 1, "note": 1}


def test_sort_newest_and_pagination(client, journal):
    j = journal
    newest = search(client, j["viewer"], q="", sort="newest", per_page=2)
    order = [j["obs"][k]["id"] for k in ("fullwidth", "beijing", "english", "quote", "excel")]
    assert [h["id"] for h in newest["hits"]] == order[:2]
    page2 = search(client, j["viewer"], q="", sort="newest", per_page=2, page=2)
    assert [h["id"] for h in page2["hits"]] == order[2:4]
    page3 = search(client, j["viewer"], q="", sort="newest", per_page=2, page=3)
    assert [h["id"] for h in page3["hits"]] == order[4:] and page3["total"] == 5
    relevance = search(client, j["viewer"], q="excel", per_page=1, page=2)
    assert relevance["total"] == 2 and len(relevance["hits"]) == 1 and relevance["hits"][0]["score"] > 0


def test_sort_oldest_and_pagination(client, journal):
    """The PWA offers 最早/Oldest: oldest first, with or without words, paged without repeats."""
    j = journal
    order = [j["obs"][k]["id"] for k in ("excel", "quote", "english", "beijing", "fullwidth")]
    pages = [search(client, j["viewer"], q="", sort="oldest", per_page=2, page=p) for p in (1, 2, 3)]
    assert [h["id"] for p in pages for h in p["hits"]] == order
    assert pages[0]["sort"] == "oldest" and pages[0]["total"] == 5
    assert all(h["score"] is None for p in pages for h in p["hits"])
    words = search(client, j["viewer"], q="excel", sort="oldest")
    assert [h["id"] for h in words["hits"]] == [j["obs"]["excel"]["id"], j["obs"]["fullwidth"]["id"]]
    bad = client.get("/api/search", params={"sort": "sideways"}, headers=j["viewer"].headers)
    assert bad.status_code == 422
    schema = client.get("/openapi.json").json()
    sort = next(p for p in schema["paths"]["/api/search"]["get"]["parameters"] if p["name"] == "sort")
    assert sort["schema"]["enum"] == ["relevance", "newest", "oldest"]


def test_daily_summaries_are_found(client, journal, app):
    j = journal
    r = client.put(
        f"/api/stints/{j['sid']}/days/2026-03-05",
        json={"summary": "今天主要在看对账流程，finance team 很配合"},
        headers=j["researcher"].headers,
    )
    assert r.status_code == 200, r.text
    settle(app)
    res = search(client, j["viewer"], q="对账流程")
    assert [h["type"] for h in res["hits"]] == ["day"]
    assert res["hits"][0]["day"] == "2026-03-05"
    assert ids(search(client, j["viewer"], q="type:day finance")) == {res["hits"][0]["id"]}


def test_hits_say_when_on_the_stints_clock(client, journal, app):
    """The stint is in Shanghai: every hit's time is on its clock, like the day beside it."""
    j = journal
    utc = observe(client, j["researcher"], j["sid"], "夜班交接记录", observed_at="2026-03-11T17:30:00Z")
    put = client.put(
        f"/api/stints/{j['sid']}/days/2026-03-05",
        json={"summary": "交接流程梳理完"},
        headers=j["researcher"].headers,
    )
    assert put.status_code == 200, put.text
    settle(app)
    hits = {h["id"]: h for h in search(client, j["viewer"], q="交接")["hits"]}
    assert hits[utc["id"]]["at"] == "2026-03-12T01:30:00+08:00" and hits[utc["id"]]["day"] == "2026-03-12"
    day = next(h for h in hits.values() if h["type"] == "day")
    assert day["at"] == "2026-03-05T23:59:59+08:00"  # the end of that day on site, not in UTC
    excel = search(client, j["viewer"], q="北京大学")["hits"][0]
    assert excel["at"] == "2026-03-10T10:00:00+08:00"


def test_permissions_hits_totals_and_facets(client, journal, person, app):
    j = journal
    # the outsider has a stint of their own with the same words in it
    outsider = j["outsider"]
    other = client.post("/api/stints", json={**STINT, "title": "别家的驻场"}, headers=outsider.headers).json()
    mine = observe(client, outsider, other["id"], "我们也手工排班，也用 Excel")
    settle(app)
    res = search(client, outsider, q="排班")
    assert ids(res) == {mine["id"]} and res["total"] == 1
    assert {x["value"] for x in res["facets"]["stints"]} == {other["id"]}
    assert search(client, outsider, q="", per_page=100)["total"] == 1
    member = search(client, j["viewer"], q="排班")
    assert ids(member) == {j["obs"]["excel"]["id"]}
    assert all(x["value"] != other["id"] for x in member["facets"]["stints"])
    # naming a stint you do not belong to is 404, as everywhere inside a stint
    r = client.get("/api/search", params={"q": "排班", "stint_id": j["sid"]}, headers=outsider.headers)
    assert r.status_code == 404
    # a global admin is not a member: sees nothing of the stint
    assert search(client, j["admin"], q="排班")["total"] == 0
    # a deleted stint disappears from its members' searches
    assert client.delete(f"/api/stints/{other['id']}", headers=outsider.headers).status_code == 204
    assert search(client, outsider, q="排班")["total"] == 0
    assert client.get("/api/search", params={"q": "x"}).status_code == 401


@pytest.mark.parametrize(
    "q",
    [
        '"unclosed phrase',
        "-",
        "- -- ---",
        "foo:bar",
        "AND OR NOT",
        "tag:",
        "((()))[]{}*?~^",
        'kind:"quote"',
        "\\",
        "排班\u3000ＯＲ\u3000对账",
        "「排班」",
        "a" * 400,
        "🙂 emoji",
        "title: 排班",
        "date:2026-03-01..",
        "a吗b呢",  # two one-character parts in one clause
        "\x01ú𥧴\n\x93KÅ\x91",  # found by schemathesis
    ],
)
def test_odd_queries_never_fail(client, journal, q):
    r = client.get("/api/search", params={"q": q}, headers=journal["viewer"].headers)
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert r.json()["error"]["code"] == "invalid_query"


@pytest.mark.parametrize(
    ("q", "message"),
    [("kind:xyz", "not a kind"), ("date:yesterdayish", "not a date"), ("date:2026-02-30", "not a real date")],
)
def test_meaningless_filters_are_400(client, journal, q, message):
    r = client.get("/api/search", params={"q": q}, headers=journal["viewer"].headers)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_query" and message in r.json()["error"]["message"]


def test_query_language_reading():
    p = parse_query(
        '调度 "手工 排班" -Excel -"系统上线" tag:痛点 kind:Quote author:"王 经理" 类型：note date:2026-03'
    )
    assert [(c.text, c.negated, c.phrase) for c in p.clauses] == [
        ("调度", False, False),
        ("手工 排班", False, True),
        ("Excel", True, False),
        ("系统上线", True, True),
    ]
    assert p.tags == ["痛点"] and p.kinds == ["quote", "note"] and p.authors == ["王 经理"]
    assert (p.date_from.isoformat(), p.date_to.isoformat()) == ("2026-03-01", "2026-03-31")
    assert [c.text for c in parse_query("foo:bar AND baz").clauses] == ["foo:bar", "baz"]
    with pytest.raises(QueryError):
        parse_query("date:2026-03-10..2026-03-01")


def test_clause_parts_and_snippet_units():
    assert [p.tokens for p in clause_parts("北京大学")] == [("北京", "京大", "大学")]
    assert [(p.tokens, p.unigram) for p in clause_parts("京")] == [(("京",), True)]
    assert [p.tokens for p in clause_parts("SaaS系统")] == [("saa", "系统")]
    field, html = snippet({"text": "a<b> 排班 & 排班"}, clause_parts("排班"))
    assert field == "text" and html == "a&lt;b&gt; <mark>排班</mark> &amp; <mark>排班</mark>"
    long_text = "开头" + "很长的背景描述" * 40 + "关键的对账问题" + "结尾"
    _, cut = snippet({"text": long_text}, clause_parts("对账"))
    assert cut.startswith("…") and "<mark>对账</mark>" in cut and len(cut) < 200


def test_fresh_after_create_edit_delete(client, stint_team):
    t = stint_team
    sid, r = t["stint"]["id"], t["researcher"]
    created = observe(client, r, sid, "仓库主管用对讲机派车")
    wait_for(lambda: search(client, r, q="对讲机")["total"] == 1)
    edited = client.patch(
        f"/api/observations/{created['id']}",
        json={"text": "仓库主管改用钉钉派车"},
        headers={**r.headers, "If-Match": '"1"'},
    )
    assert edited.status_code == 200, edited.text
    wait_for(lambda: search(client, r, q="钉钉")["total"] == 1)
    assert search(client, r, q="对讲机")["total"] == 0
    assert client.delete(f"/api/observations/{created['id']}", headers=r.headers).status_code == 204
    wait_for(lambda: search(client, r, q="钉钉")["total"] == 0)


def test_reindex_while_searching(client, journal, app, monkeypatch, settings):
    j = journal
    errors: list[str] = []
    totals: set[int] = set()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            r = client.get("/api/search", params={"q": "excel"}, headers=j["viewer"].headers)
            if r.status_code != 200:
                errors.append(r.text)
            else:
                totals.add(r.json()["total"])

    reader = threading.Thread(target=hammer)
    reader.start()
    try:
        before = app.state.search_store.current_dir()
        monkeypatch.setenv("FIELDBOOK_DATA_DIR", str(settings.data_dir))
        monkeypatch.setenv("FIELDBOOK_DATABASE_URL", settings.sqlalchemy_url)
        result = CliRunner().invoke(cli_app, ["reindex"])
        assert result.exit_code == 0, result.output
        assert "Indexed 5 record(s)" in result.output
        after = app.state.search_store.current_dir()
        time.sleep(0.3)
    finally:
        stop.set()
        reader.join()
    assert before != after and after is not None and not before.exists()
    assert errors == [] and totals == {2}
    assert ids(search(client, j["viewer"], q="excel")) == {
        j["obs"]["excel"]["id"],
        j["obs"]["fullwidth"]["id"],
    }


def test_lost_index_rebuilds_itself(client, journal, app):
    j = journal
    shutil.rmtree(app.state.search_store.current_dir())
    r = client.get("/api/search", params={"q": "排班"}, headers=j["viewer"].headers)
    assert r.status_code in (200, 503)
    if r.status_code == 503:
        assert r.json()["error"]["code"] == "search_unavailable" and r.headers["retry-after"]
    wait_for(
        lambda: (
            client.get("/api/search", params={"q": "排班"}, headers=j["viewer"].headers).status_code == 200
        )
    )
    assert ids(search(client, j["viewer"], q="排班")) == {j["obs"]["excel"]["id"]}


def test_corrupt_index_rebuilds_itself(client, journal, app):
    j = journal
    directory = app.state.search_store.current_dir()
    for f in directory.iterdir():
        if f.suffix in (".seg", ".trm", ".pst") or f.name.endswith((".toc",)):
            f.write_bytes(b"\x00garbage" * 64)
    first = client.get("/api/search", params={"q": "排班"}, headers=j["viewer"].headers)
    assert first.status_code in (200, 503)
    wait_for(lambda: app.state.search_store.current_dir() not in (None, directory))
    wait_for(
        lambda: (
            client.get("/api/search", params={"q": "排班"}, headers=j["viewer"].headers).status_code == 200
        )
    )
    assert ids(search(client, j["viewer"], q="排班")) == {j["obs"]["excel"]["id"]}


def test_check_reports_differences(client, journal, app, db, monkeypatch, settings):
    j = journal
    store, engine = app.state.search_store, app.state.engine
    assert check(store, engine).ok
    # a row written behind the application's back (no index task): check must notice
    with indexer_lock(store.lock_path, wait_seconds=10):  # keep the indexer still meanwhile
        obs = db.get(Observation, __import__("uuid").UUID(j["obs"]["excel"]["id"]))
        db.execute(sa.update(Observation).where(Observation.id == obs.id).values(text="悄悄改掉的内容"))
        db.commit()
        report = check(store, engine, lock=False)
        assert not report.ok and report.stale == [f"observation:{obs.id}"]
    # the command takes the indexer's lock itself (no task: the indexer leaves the record as it is)
    monkeypatch.setenv("FIELDBOOK_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FIELDBOOK_DATABASE_URL", settings.sqlalchemy_url)
    result = CliRunner().invoke(cli_app, ["check"])
    assert result.exit_code == 1 and "outdated" in result.output
    with indexer_lock(store.lock_path, wait_seconds=10):
        # a queued task explains the difference: not an inconsistency
        db.add(SearchTask(doc_type="observation", doc_id=str(obs.id)))
        db.commit()
        queued = check(store, engine, lock=False)
        assert queued.ok and queued.in_flight == 1
    settle(app)
    assert check(store, engine).ok
    assert search(client, j["viewer"], q="悄悄改掉")["total"] == 1


def test_two_workers_share_one_index(client, stint_team, app, settings):
    """Two app processes' worth of indexers on one data directory: one writer at a time, no
    write lost, no lock error."""
    t = stint_team
    second = create_app(settings)
    with TestClient(second, raise_server_exceptions=False) as other:
        sid = t["stint"]["id"]
        made = []
        for i in range(12):
            c = client if i % 2 else other
            made.append(observe(c, t["researcher"], sid, f"第{i}条记录 worker{i % 2} 装车顺序")["id"])
        settle(app)
        for c in (client, other):
            res = search(c, t["viewer"], q="装车顺序", per_page=50)
            assert ids(res) == set(made)
    second.state.engine.dispose()
    assert check(app.state.search_store, app.state.engine).ok


def test_a_busy_round_paces_every_workers_indexer(tmp_path, monkeypatch):
    """Under a stream of writes rounds are paced for the index, not per worker process: after one
    indexer's busy round every indexer of that data directory waits; a small round holds no one off."""
    monkeypatch.setattr(search_indexer, "BUSY_TASKS", 3)
    monkeypatch.setattr(search_indexer, "BUSY_ROUND_SECONDS", 60.0)  # however slow the round itself
    engine = make_engine(f"sqlite:///{tmp_path / 'fieldbook.db'}")
    migrations.upgrade(engine)
    store = IndexStore(tmp_path / "search")
    first, second = Indexer(store, engine), Indexer(store, engine)  # two workers' (threads not started)

    def queue(count: int) -> None:
        with Session(engine) as session:
            record_index_tasks(session, "observation", [uuid.uuid4() for _ in range(count)])
            session.commit()

    try:
        first.cycle()  # builds the (empty) index
        queue(2)
        assert first.cycle() == 2
        assert second.held_off() == 0.0
        queue(3)
        assert first.cycle() == 3
        assert 0.0 < second.held_off() <= 60.0
        assert 0.0 < first.held_off() <= 60.0
        stamp = store.lock_path.with_name("busy-round")
        later = time.time() + 3600  # a stamp from before the clock stepped back an hour
        os.utime(stamp, (later, later))
        assert second.held_off() == 0.0
    finally:
        engine.dispose()


@pytest.mark.parametrize("for_other_processes", [True, False])
def test_an_indexer_for_other_processes_sees_their_commits(tmp_path, for_other_processes):
    """``fieldbook serve`` indexes in its own process for its workers, whose commits cannot wake it:
    on SQLite it watches for them, well before its poll (here a minute) comes round."""
    database = tmp_path / "fieldbook.db"
    engine = make_engine(f"sqlite:///{database}")
    migrations.upgrade(engine)
    indexer = Indexer(
        IndexStore(tmp_path / "search"), engine, poll_seconds=60, for_other_processes=for_other_processes
    )
    indexer.start()

    def queued() -> int:
        with engine.connect() as connection:
            return int(connection.execute(sa.select(sa.func.count()).select_from(SearchTask)).scalar_one())

    try:
        assert indexer._thread is not None and indexer._thread.native_id is not None
        stat = Path(f"/proc/self/task/{indexer._thread.native_id}/stat").read_text()
        nice = int(stat.rsplit(")", 1)[1].split()[16])  # after the name: field 19 of proc(5)
        ours = os.getpriority(os.PRIO_PROCESS, 0)  # pytest may run niced itself
        assert nice == (
            min(19, ours + 10) if for_other_processes else ours
        )  # it gives the workers a core first
        time.sleep(0.5)  # its first rounds are done: it waits
        # Another process queues a task (for a record that is gone: applying it deletes the task).
        subprocess.run(
            [
                sys.executable,
                "-c",
                'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute("INSERT INTO search_task'
                " (doc_type, doc_id, created_at) VALUES ('observation', 'gone', '2026-11-25 07:00:00')\");"
                " c.commit()",
                str(database),
            ],
            check=True,
        )
        assert queued() == 1
        deadline = time.monotonic() + (10 if for_other_processes else 1.5)
        while queued() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert queued() == (0 if for_other_processes else 1)
    finally:
        indexer.stop()
        engine.dispose()


def test_materials_insights_and_actions_are_found(client, stint_team, app):
    from tests.material_files import docx, photo

    t = stint_team
    sid, r, m = t["stint"]["id"], t["researcher"], t["manager"]

    def upload(data: bytes, filename: str, **fields: str) -> dict[str, Any]:
        res = client.post(
            f"/api/stints/{sid}/materials",
            files={"file": (filename, data, "application/octet-stream")},
            data=fields,
            headers=r.headers,
        )
        assert res.status_code == 201, res.text
        return res.json()

    pic = upload(photo(), "白板.jpg", caption="调度白板上的派车顺序")
    doc = upload(docx(["月结对账模板", "Reconciliation checklist v3"]), "对账模板.docx")
    insight = client.post(
        f"/api/stints/{sid}/insights",
        json={"title": "排班靠老员工经验", "statement": "The schedule lives in one dispatcher's head"},
        headers=r.headers,
    )
    assert insight.status_code == 201, insight.text
    action = client.post(
        f"/api/stints/{sid}/actions",
        json={"title": "试点自动排班看板", "description": "pilot board"},
        headers=m.headers,
    )
    assert action.status_code == 201, action.text
    settle(app)

    def found(q: str) -> set[tuple[str, str]]:
        return {(h["type"], h["id"]) for h in search(client, t["viewer"], q=q)["hits"]}

    assert found("派车顺序") == {("material", pic["id"])}
    assert ("material", doc["id"]) in found("对账模板")  # the file name
    wait_for(lambda: ("material", doc["id"]) in found("checklist"))  # extracted text, once extracted
    assert found("老员工") == {("insight", insight.json()["id"])}
    assert found("dispatcher type:insight") == {("insight", insight.json()["id"])}
    assert found("自动排班") == {("action", action.json()["id"])}
    assert client.delete(f"/api/materials/{pic['id']}", headers=r.headers).status_code == 204
    wait_for(lambda: found("派车顺序") == set())
    assert search(client, t["outsider"], q="对账模板")["total"] == 0
    settle(app)
    assert check(app.state.search_store, app.state.engine).ok


def test_index_of_another_version_is_rebuilt_at_start(client, journal, app, settings):
    from api.search_index import VERSION_FILE

    j = journal
    old = app.state.search_store.current_dir()
    (old / VERSION_FILE).write_text("0")
    restarted = create_app(settings)
    with TestClient(restarted, raise_server_exceptions=False) as again:
        wait_for(lambda: restarted.state.search_store.current_dir() not in (None, old))
        wait_for(
            lambda: (
                again.get("/api/search", params={"q": "排班"}, headers=j["viewer"].headers).status_code == 200
            )
        )
        assert ids(search(again, j["viewer"], q="排班")) == {j["obs"]["excel"]["id"]}
    restarted.state.engine.dispose()


def test_marks_across_a_run_end_and_words():
    _, html = snippet({"text": "系统数据Excel导出，数据 excel 再导入"}, clause_parts("数据excel"))
    assert html == "系统<mark>数据Excel</mark>导出，<mark>数据 excel</mark> 再导入"
    _, html = snippet({"text": "The dispatchers dispatched it"}, clause_parts("dispatch"))
    assert html == "The <mark>dispatchers</mark> <mark>dispatched</mark> it"


def test_materials_and_insights_are_filed_under_the_stints_local_day(client, stint_team, app):
    """00:30 in Shanghai on 5 March is 16:30 UTC on 4 March: the day is the stint's, as for observations."""
    import uuid
    from datetime import UTC, datetime

    from sqlmodel import Session

    import api.search_debrief_sources  # registers the sources, as the app does
    import api.search_sources  # noqa: F401
    from api.debrief_models import Insight
    from api.material_tables import Material
    from api.search_docs import source
    from tests.test_search_dates import jpeg

    t = stint_team
    sid, r = t["stint"]["id"], t["researcher"]
    pic = client.post(  # no EXIF time, no observation: dated by its upload
        f"/api/stints/{sid}/materials",
        files={"file": ("白板.jpg", jpeg(None), "image/jpeg")},
        headers=r.headers,
    ).json()
    insight = client.post(
        f"/api/stints/{sid}/insights", json={"title": "夜班交接", "statement": "handover"}, headers=r.headers
    ).json()
    late = datetime(2026, 3, 4, 16, 30, tzinfo=UTC)
    with Session(app.state.engine) as session:
        for table, record_id in ((Material, pic["id"]), (Insight, insight["id"])):
            session.execute(sa.update(table).where(table.id == uuid.UUID(record_id)).values(created_at=late))
        session.commit()
        for doc_type, record_id in (("material", pic["id"]), ("insight", insight["id"])):
            found = source(doc_type).load(session, [record_id])  # type: ignore[union-attr]
            assert found[record_id].day.isoformat() == "2026-03-05", doc_type
