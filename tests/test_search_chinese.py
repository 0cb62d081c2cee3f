"""Chinese text in search beyond the basics of ``test_search.py``: quoted phrases typed with spaces
between words."""

from typing import Any

from api.search_analysis import clause_parts, snippet
from tests.test_search import observe, search, settle


def _ids(result: dict[str, Any]) -> set[str]:
    return {h["id"] for h in result["hits"]}


def test_quoted_phrase_with_a_space_matches_adjacent_chinese(client, stint_team, app):
    """Chinese users type spaces between words: "手工 排班" (the query language's own example) finds
    手工排班, and still finds the words separated by a space or punctuation, but not apart."""
    t = stint_team
    sid, r = t["stint"]["id"], t["researcher"]
    joined = observe(client, r, sid, "调度员用Excel表格手工排班")
    spaced = observe(client, r, sid, "仓库 手工 排班 很辛苦")
    comma = observe(client, r, sid, "全靠手工，排班表每天改")
    observe(client, r, sid, "手工做账，晚上再排班")  # both words, not one after the other
    observe(client, r, sid, "手工 X排班")  # a character between them
    settle(app)
    want = {joined["id"], spaced["id"], comma["id"]}
    assert _ids(search(client, r, q='"手工 排班"')) == want
    assert _ids(search(client, r, q="“手工  排班”")) == want
    assert _ids(search(client, r, q="「手工排班」")) == {joined["id"]}
    assert _ids(search(client, r, q='"用Excel表格 手工 排班"')) == {joined["id"]}
    assert _ids(search(client, r, q='-"手工 排班" 排班')) == {
        o["id"] for o in search(client, r, q="排班")["hits"] if o["id"] not in want
    }
    hit = next(h for h in search(client, r, q='"手工 排班"')["hits"] if h["id"] == joined["id"])
    assert hit["snippet"] == "调度员用Excel表格<mark>手工排班</mark>"


def test_phrase_with_a_space_is_highlighted_joined_and_apart():
    parts = clause_parts("手工 排班")
    _, html = snippet({"text": "手工排班，手工 排班，手工做排班"}, parts)
    assert html == "<mark>手工排班</mark>，<mark>手工 排班</mark>，手工做排班"
