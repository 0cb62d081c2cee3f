"""CJK Radicals Supplement (U+2E80–U+2EFF) → the unified ideographs they stand for (⻓ → 长,
⻔ → 门, ⻋ → 车), applied before NFKC wherever search normalises text (indexing and queries).

PDF text extraction often yields these radical code points where the page shows an ordinary
character (the font maps the glyph to the radical). NFKC folds the Kangxi Radicals block
(U+2F00–U+2FDF: ⼈ → 人) but not this one, except ⺟ and ⻳.

Generated from Unicode's EquivalentUnifiedIdeograph.txt (15.0.0, the Debian/Ubuntu package
``unicode-data``) by running this module::

    apt-get install -y unicode-data
    .venv/bin/python -m api.search_radicals /usr/share/unicode/EquivalentUnifiedIdeograph.txt \\
        > api/search_radicals.py

Only the CJK Radicals Supplement block is kept: every Kangxi radical's mapping in that file is
what NFKC gives already, and CJK strokes (U+31C0–U+31EF) are strokes, not characters in text.
The application does not read the Unicode file at run time.
"""

import re
import sys

BLOCK = (0x2E80, 0x2EFF)

# --- generated from EquivalentUnifiedIdeograph-15.0.0.txt ---
RADICALS: dict[int, str] = {
    0x2E81: "厂",  # ⺁ U+5382
    0x2E82: "乛",  # ⺂ U+4E5B
    0x2E83: "乚",  # ⺃ U+4E5A
    0x2E84: "乙",  # ⺄ U+4E59
    0x2E85: "亻",  # ⺅ U+4EBB
    0x2E86: "冂",  # ⺆ U+5182
    0x2E87: "𠘨",  # ⺇ U+20628
    0x2E88: "刀",  # ⺈ U+5200
    0x2E89: "刂",  # ⺉ U+5202
    0x2E8A: "卜",  # ⺊ U+535C
    0x2E8B: "㔾",  # ⺋ U+353E
    0x2E8C: "小",  # ⺌ U+5C0F
    0x2E8D: "小",  # ⺍ U+5C0F
    0x2E8E: "兀",  # ⺎ U+5140
    0x2E8F: "尣",  # ⺏ U+5C23
    0x2E90: "尢",  # ⺐ U+5C22
    0x2E91: "𡯂",  # ⺑ U+21BC2
    0x2E92: "巳",  # ⺒ U+5DF3
    0x2E93: "幺",  # ⺓ U+5E7A
    0x2E94: "彑",  # ⺔ U+5F51
    0x2E95: "𫜹",  # ⺕ U+2B739
    0x2E96: "忄",  # ⺖ U+5FC4
    0x2E97: "心",  # ⺗ U+5FC3
    0x2E98: "扌",  # ⺘ U+624C
    0x2E99: "攵",  # ⺙ U+6535
    0x2E9B: "旡",  # ⺛ U+65E1
    0x2E9C: "日",  # ⺜ U+65E5
    0x2E9D: "月",  # ⺝ U+6708
    0x2E9E: "歺",  # ⺞ U+6B7A
    0x2E9F: "母",  # ⺟ U+6BCD
    0x2EA0: "民",  # ⺠ U+6C11
    0x2EA1: "氵",  # ⺡ U+6C35
    0x2EA2: "氺",  # ⺢ U+6C3A
    0x2EA3: "灬",  # ⺣ U+706C
    0x2EA4: "爫",  # ⺤ U+722B
    0x2EA5: "爫",  # ⺥ U+722B
    0x2EA6: "丬",  # ⺦ U+4E2C
    0x2EA7: "牛",  # ⺧ U+725B
    0x2EA8: "犭",  # ⺨ U+72AD
    0x2EA9: "王",  # ⺩ U+738B
    0x2EAA: "𤴔",  # ⺪ U+24D14
    0x2EAB: "目",  # ⺫ U+76EE
    0x2EAC: "示",  # ⺬ U+793A
    0x2EAD: "礻",  # ⺭ U+793B
    0x2EAE: "𥫗",  # ⺮ U+25AD7
    0x2EAF: "糹",  # ⺯ U+7CF9
    0x2EB0: "纟",  # ⺰ U+7E9F
    0x2EB1: "罓",  # ⺱ U+7F53
    0x2EB2: "罒",  # ⺲ U+7F52
    0x2EB3: "㓁",  # ⺳ U+34C1
    0x2EB4: "冗",  # ⺴ U+5197
    0x2EB5: "𦉫",  # ⺵ U+2626B
    0x2EB6: "羊",  # ⺶ U+7F8A
    0x2EB7: "𦍌",  # ⺷ U+2634C
    0x2EB8: "𦍋",  # ⺸ U+2634B
    0x2EB9: "耂",  # ⺹ U+8002
    0x2EBA: "肀",  # ⺺ U+8080
    0x2EBB: "聿",  # ⺻ U+807F
    0x2EBC: "肉",  # ⺼ U+8089
    0x2EBD: "𦥑",  # ⺽ U+26951
    0x2EBE: "艹",  # ⺾ U+8279
    0x2EBF: "艹",  # ⺿ U+8279
    0x2EC0: "艹",  # ⻀ U+8279
    0x2EC1: "虎",  # ⻁ U+864E
    0x2EC2: "衤",  # ⻂ U+8864
    0x2EC3: "覀",  # ⻃ U+8980
    0x2EC4: "西",  # ⻄ U+897F
    0x2EC5: "见",  # ⻅ U+89C1
    0x2EC6: "角",  # ⻆ U+89D2
    0x2EC7: "𧢲",  # ⻇ U+278B2
    0x2EC8: "讠",  # ⻈ U+8BA0
    0x2EC9: "贝",  # ⻉ U+8D1D
    0x2ECA: "𧾷",  # ⻊ U+27FB7
    0x2ECB: "车",  # ⻋ U+8F66
    0x2ECC: "辶",  # ⻌ U+8FB6
    0x2ECD: "辶",  # ⻍ U+8FB6
    0x2ECE: "辶",  # ⻎ U+8FB6
    0x2ECF: "邑",  # ⻏ U+9091
    0x2ED0: "钅",  # ⻐ U+9485
    0x2ED1: "長",  # ⻑ U+9577
    0x2ED2: "镸",  # ⻒ U+9578
    0x2ED3: "长",  # ⻓ U+957F
    0x2ED4: "门",  # ⻔ U+95E8
    0x2ED5: "𨸏",  # ⻕ U+28E0F
    0x2ED6: "阝",  # ⻖ U+961D
    0x2ED7: "雨",  # ⻗ U+96E8
    0x2ED8: "青",  # ⻘ U+9752
    0x2ED9: "韦",  # ⻙ U+97E6
    0x2EDA: "页",  # ⻚ U+9875
    0x2EDB: "风",  # ⻛ U+98CE
    0x2EDC: "飞",  # ⻜ U+98DE
    0x2EDD: "食",  # ⻝ U+98DF
    0x2EDE: "𩙿",  # ⻞ U+2967F
    0x2EDF: "飠",  # ⻟ U+98E0
    0x2EE0: "饣",  # ⻠ U+9963
    0x2EE1: "𩠐",  # ⻡ U+29810
    0x2EE2: "马",  # ⻢ U+9A6C
    0x2EE3: "骨",  # ⻣ U+9AA8
    0x2EE4: "鬼",  # ⻤ U+9B3C
    0x2EE5: "鱼",  # ⻥ U+9C7C
    0x2EE6: "鸟",  # ⻦ U+9E1F
    0x2EE7: "卤",  # ⻧ U+5364
    0x2EE8: "麦",  # ⻨ U+9EA6
    0x2EE9: "黄",  # ⻩ U+9EC4
    0x2EEA: "黾",  # ⻪ U+9EFE
    0x2EEB: "斉",  # ⻫ U+6589
    0x2EEC: "齐",  # ⻬ U+9F50
    0x2EED: "歯",  # ⻭ U+6B6F
    0x2EEE: "齿",  # ⻮ U+9F7F
    0x2EEF: "竜",  # ⻯ U+7ADC
    0x2EF0: "龙",  # ⻰ U+9F99
    0x2EF1: "龜",  # ⻱ U+9F9C
    0x2EF2: "亀",  # ⻲ U+4E80
    0x2EF3: "龟",  # ⻳ U+9F9F
}
# --- end of generated table ---

RADICALS_PATTERN = re.compile("[\u2e80-\u2eff]")


def fold_radicals(text: str) -> str:
    """``text`` with every mapped radical replaced by its ideograph (unchanged, cheaply, without any)."""
    if RADICALS_PATTERN.search(text) is None:
        return text
    return text.translate(RADICALS)


def _generate(path: str) -> str:
    """This module's source, with the table read from EquivalentUnifiedIdeograph.txt at ``path``."""
    pairs: list[tuple[int, int]] = []
    version = ""
    with open(path, encoding="utf-8") as source:
        for raw in source:
            if raw.startswith("# EquivalentUnifiedIdeograph-"):
                version = raw.strip("# \n")
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            code, target = (field.strip() for field in line.split(";"))
            first, _, last = code.partition("..")
            for cp in range(int(first, 16), int(last or first, 16) + 1):
                if BLOCK[0] <= cp <= BLOCK[1]:
                    pairs.append((cp, int(target, 16)))
    with open(__file__, encoding="utf-8") as own:
        me = own.read()
    head = me[: me.index("# --- generated")]
    tail = me[me.index("# --- end of generated") :]
    rows = "".join(f'    0x{cp:04X}: "{chr(t)}",  # {chr(cp)} U+{t:04X}\n' for cp, t in sorted(pairs))
    return f"{head}# --- generated from {version} ---\nRADICALS: dict[int, str] = {{\n{rows}}}\n{tail}"


if __name__ == "__main__":
    sys.stdout.write(_generate(sys.argv[1]))
