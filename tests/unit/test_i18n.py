"""Language negotiation and the message catalogs.

The catalogs are checked against what Babel's own extractor finds in the source, so a message id
added with ``N_`` but not translated (or translated with the wrong placeholders) fails here.
"""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from hypothesis import given, settings
from hypothesis import strategies as st

from carbonpuhui.i18n import SUPPORTED, negotiate, translate

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = [ROOT / "src" / "carbonpuhui", ROOT / "mobile_api", ROOT / "procurement", ROOT / "scoring"]
I18N_DIR = ROOT / "src" / "carbonpuhui" / "i18n"
POT = I18N_DIR / "messages.pot"
PO_FILES = {locale: I18N_DIR / "locales" / folder / "LC_MESSAGES" / "messages.po"
            for locale, folder in (("zh-Hans", "zh_Hans"), ("zh-Hant", "zh_Hant"))}
REGENERATE = ("pybabel extract -F babel.cfg -k N_ --no-location --omit-header --no-wrap "
              "-o src/carbonpuhui/i18n/messages.pot src mobile_api procurement scoring")

# Simplified forms whose Traditional counterpart is a different character, and which are not
# themselves in ordinary Traditional use (so 于, 后, 里, 台, 系, 准 ... are left out on purpose).
SIMPLIFIED_ONLY = frozenset(
    "这个们为无与书会员发现时间门问关开数库证请认错误类级实该须处应围访导单务权码标签规则达变换产区国县层"
    "电运输热杂确过来还进选项设状态长线组织构读写记录载给经济统计报图显页题别环节链连续总样测试验评审领资"
    "终细约买卖购钱费车轨铁飞场乐业东两严举义习乡乱亚亲从仓仪众优传伤储儿党兰兴养农决况净减击创删剂剧劝办动"
    "励劳势医华协卫厂厅历压厌参双吗听员圆坏块坚垫声壳备头夹夺奖妇学宁宝宠宽对寻将尔尽岁岛帅师帐带帮广庆"
    "张弹归彻径忆恶悬惊惯战扑执扩扫扬扰护担拟择挡挤挥损换摄摆数断旧晓暂杀条栏树桥检楼欢欧残毕汇汉汤沟没沥"
    "浏浓涨渐湾湿满滤滥灭灯灵灾点炼烦烧爱独狱献现画疗盐监盘础积称税稳穷窃竞笔简粮紧纠红纪纯纸纳练绑结绕绘"
    "络绝继绩维综绿缓编缘罗罚职联肤胶脑脸艺药获营萧虑虽补装见观视览觉触订讨让训议讯讲许论识诉词译诚话询详"
    "语说诸课谁调谈谢谦谨谱负贡财责败账货质贩贯贵贷赖赔赛赞赠赢赵趋跃践转轮软轻较辅辆边迁违迟递遗邮郑释钟"
    "钢钥铜银销锁锦键镜闭闲闻阅阔队阳阴阵阶际陆陈险随隐难雾顶顺顾预频颜额风饭馆马驱驶鱼鲜鸟鸡齐齿龙龟"
)


# --- negotiate() ----------------------------------------------------------------------------------


def test_lang_parameter_beats_accept_language() -> None:
    assert negotiate("en", "zh-Hant", "zh-Hans") == "en"
    assert negotiate("zh-TW", "en", "zh-Hans") == "zh-Hant"
    assert negotiate("zh", "zh-Hant, en", "en") == "zh-Hans"


def test_unusable_lang_parameter_falls_back_to_the_header() -> None:
    assert negotiate("fr", "zh-Hant", "zh-Hans") == "zh-Hant"
    assert negotiate("", "en", "zh-Hans") == "en"
    assert negotiate("*", "en", "zh-Hans") == "en"


@pytest.mark.parametrize(("header", "expected"), [
    ("en;q=0.5, zh-Hant;q=0.9", "zh-Hant"),
    ("zh-Hant;q=0.1, en", "en"),                       # no q means 1.0
    ("en, zh-Hant", "en"),                             # equal q: the order of the header decides
    ("zh-Hant, en", "zh-Hant"),
    ("en;q=0, zh-Hant;q=0.1", "zh-Hant"),              # q=0 means "not this one"
    ("fr;q=1.0, de;q=0.9, zh-HK;q=0.2, en;q=0.1", "zh-Hant"),  # the best supported one wins
    ("en-US;q=0.3, zh-CN;q=0.8", "zh-Hans"),
    ("  zh-TW ; q=0.7 ,en ; q=0.6", "zh-Hant"),        # whitespace around tags and parameters
])
def test_accept_language_q_values(header: str, expected: str) -> None:
    assert negotiate(None, header, "en") == expected


@pytest.mark.parametrize("tag", ["zh-TW", "zh-HK", "zh-MO", "zh-Hant", "zh-Hant-TW", "zh_TW", "ZH-tw", "zh-Hant-HK"])
def test_traditional_chinese_tags(tag: str) -> None:
    assert negotiate(None, tag, "en") == "zh-Hant"
    assert negotiate(tag, None, "en") == "zh-Hant"


@pytest.mark.parametrize("tag", ["zh", "zh-CN", "zh-SG", "zh-Hans", "zh-Hans-CN", "zh-cn"])
def test_simplified_chinese_tags(tag: str) -> None:
    assert negotiate(None, tag, "en") == "zh-Hans"
    assert negotiate(tag, None, "en") == "zh-Hans"


@pytest.mark.parametrize("tag", ["en", "en-GB", "en-US", "EN"])
def test_english_tags(tag: str) -> None:
    assert negotiate(None, tag, "zh-Hant") == "en"


@pytest.mark.parametrize("header", ["fr", "de;q=0.9", "fr-CA, de;q=0.9, ja;q=0.8", "en;q=0, zh;q=0"])
@pytest.mark.parametrize("default", SUPPORTED)
def test_unsupported_languages_give_the_default(header: str, default: str) -> None:
    assert negotiate(None, header, default) == default


@pytest.mark.parametrize("header", ["", ";;;", "q=abc", "*", ",,,", "en;q=abc", ";q=1", "zh-;q=", "-", "\x00",
                                    "en;q=nan", "zh-Hant;q=1e999999", "🙂", "zh-Hant-Hans-XX-YY-ZZ-11"])
def test_malformed_headers_never_raise(header: str) -> None:
    result = negotiate(None, header, "zh-Hant")
    assert result in SUPPORTED
    if header in ("", ";;;", "q=abc", "*", ",,,", "-", "\x00", "🙂"):
        assert result == "zh-Hant"


def test_malformed_q_value_counts_as_not_acceptable() -> None:
    # "q=abc" is unusable, so that tag is skipped rather than ranked first.
    assert negotiate(None, "zh-Hant;q=abc, en;q=0.1", "zh-Hans") == "en"


def test_an_unknown_configured_default_falls_back_to_simplified_chinese() -> None:
    assert negotiate(None, None, "xx") == "zh-Hans"
    assert negotiate(None, "fr", "fr") == "zh-Hans"


_HEADERISH = st.text(alphabet="abcdefhnstzAHNTW-_;=q,.0123456789* \t", max_size=40)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(lang=st.one_of(st.none(), st.text(), _HEADERISH), header=st.one_of(st.none(), st.text(), _HEADERISH),
       default=st.one_of(st.sampled_from(SUPPORTED), st.text(max_size=8)))
def test_negotiate_never_raises_and_always_answers_a_supported_locale(lang, header, default) -> None:
    assert negotiate(lang, header, default) in SUPPORTED


# --- catalogs --------------------------------------------------------------------------------------


def _extracted_msgids() -> set[str]:
    found: set[str] = set()
    for folder in SOURCE_DIRS:
        for _filename, _lineno, message, _comments, _context in extract_from_dir(
                str(folder), method_map=[("**.py", "python")], keywords={"N_": None}):
            assert isinstance(message, str), f"N_ takes one string, got {message!r}"
            found.add(message)
    return found


def _read(path: Path, locale: str | None = None) -> Catalog:
    with open(path, "rb") as fh:
        return read_po(fh, locale=locale)


@pytest.fixture(scope="module")
def msgids() -> set[str]:
    found = _extracted_msgids()
    assert len(found) > 50, "the extractor found too few messages: is the keyword N_ still used?"
    return found


@pytest.fixture(scope="module")
def catalogs() -> dict[str, Catalog]:
    return {locale: _read(path, locale.replace("-", "_")) for locale, path in PO_FILES.items()}


def _placeholders(text: str) -> set[str]:
    return {name for _literal, name, _spec, _conv in string.Formatter().parse(text) if name is not None}


def test_extraction_sees_known_message_ids(msgids: set[str]) -> None:
    # One id from each kind of place: errors.py titles, the auth guard, the factor service.
    assert {"Not found", "This action needs one of the roles: {roles}.",
            "Factor {id} has no published version."} <= msgids


@pytest.mark.parametrize("locale", sorted(PO_FILES))
def test_every_message_has_a_translation(msgids: set[str], catalogs: dict[str, Catalog], locale: str) -> None:
    catalog = catalogs[locale]
    missing = sorted(m for m in msgids if catalog.get(m) is None)
    empty = sorted(m for m in msgids if (e := catalog.get(m)) is not None and not str(e.string).strip())
    fuzzy = sorted(m for m in msgids if (e := catalog.get(m)) is not None and e.fuzzy)
    assert not missing, f"{locale}: no entry for {missing}"
    assert not empty, f"{locale}: empty translation for {empty}"
    assert not fuzzy, f"{locale}: fuzzy translation for {fuzzy}"


@pytest.mark.parametrize("locale", sorted(PO_FILES))
def test_translations_keep_exactly_the_placeholders(msgids: set[str], catalogs: dict[str, Catalog],
                                                    locale: str) -> None:
    wrong = {}
    for msgid in msgids:
        entry = catalogs[locale].get(msgid)
        if entry is not None and _placeholders(str(entry.string)) != _placeholders(msgid):
            wrong[msgid] = str(entry.string)
    assert not wrong, f"{locale}: placeholders differ: {wrong}"


@pytest.mark.parametrize("locale", sorted(PO_FILES))
def test_translate_uses_the_catalog_and_fills_placeholders(catalogs: dict[str, Catalog], locale: str) -> None:
    msgid = "Factor {id} has no published version."
    expected = str(catalogs[locale].get(msgid).string).replace("{id}", "cn-grid")
    assert translate(msgid, locale, id="cn-grid") == expected
    assert "cn-grid" in expected and expected != msgid.replace("{id}", "cn-grid")
    assert translate(msgid, "en", id="cn-grid") == "Factor cn-grid has no published version."


def test_traditional_catalog_uses_no_simplified_forms(msgids: set[str], catalogs: dict[str, Catalog]) -> None:
    hans, hant = catalogs["zh-Hans"], catalogs["zh-Hant"]
    simplified_in_hant = {}
    same_despite_simplified = []
    for msgid in msgids:
        s, t = str(hans.get(msgid).string), str(hant.get(msgid).string)
        if found := set(t) & SIMPLIFIED_ONLY:
            simplified_in_hant[msgid] = "".join(sorted(found))
        if set(s) & SIMPLIFIED_ONLY and s == t:
            same_despite_simplified.append(msgid)
    assert not simplified_in_hant, f"zh-Hant text with Simplified characters: {simplified_in_hant}"
    assert not same_despite_simplified, f"zh-Hant copies zh-Hans text with Simplified characters: {same_despite_simplified}"


def test_most_traditional_entries_differ_from_simplified(msgids: set[str], catalogs: dict[str, Catalog]) -> None:
    differ = sum(str(catalogs["zh-Hans"].get(m).string) != str(catalogs["zh-Hant"].get(m).string) for m in msgids)
    assert differ >= 0.75 * len(msgids), f"only {differ} of {len(msgids)} zh-Hant entries differ from zh-Hans"


def test_traditional_catalog_calls_a_column_a_column(msgids: set[str], catalogs: dict[str, Catalog]) -> None:
    # In Taiwan and Hong Kong 列 is a row and 欄 a column: the mainland 列 for "column" reads as "row".
    for msgid in (m for m in msgids if "column" in m.lower()):
        text = str(catalogs["zh-Hant"].get(msgid).string)
        assert "欄" in text and "列數" not in text and not text.startswith(("缺少列", "未知列")), (msgid, text)


def test_template_is_up_to_date_with_the_source(msgids: set[str]) -> None:
    template = {m.id for m in _read(POT) if m.id}
    assert template == msgids, (
        f"messages.pot is stale (missing {sorted(msgids - template)}, extra {sorted(template - msgids)}); "
        f"regenerate it with: {REGENERATE}")


def test_an_unknown_union_tag_is_localised_with_its_path() -> None:
    from carbonpuhui.errors import localise_field_message

    raw = "Invalid value 'beta' - at `$.lines[0].activity_uncertainty.distribution`"
    texts = {}
    for locale in ("zh-Hans", "zh-Hant", "en"):
        texts[locale], path = localise_field_message(raw, locale)
        assert path == "lines[0].activity_uncertainty.distribution"
        assert "'beta'" in texts[locale] and "Invalid value" not in texts[locale]
    assert texts["en"] == "'beta' is not one of the allowed values."
    assert len(set(texts.values())) == 3  # each language its own text
