"""An evaluation as a spreadsheet (CSV) and as a chart of rank acceptability (SVG) an officer can read."""

from __future__ import annotations

import csv
import io
import re
from xml.sax.saxutils import escape, quoteattr

from carbonpuhui.i18n import N_, translate
from procurement.schemas import EvaluationOut

# Spreadsheet programs run cells that start like a formula; such text gets a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


# What XML 1.0 forbids even escaped (C0 controls, lone surrogates, U+FFFE/U+FFFF): one in a title
# or a supplier's name would make the whole chart unreadable.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml(text: str) -> str:
    return escape(_NOT_XML.sub("\ufffd", text))


def _probability(value: float | None) -> str:
    return "" if value is None else f"{value:.6f}"


def to_csv(result: EvaluationOut) -> str:
    """One row per bid, in ranking order: the scores, then P(first), confidence and rank acceptability."""
    analysis = result.analysis
    position = {bid_id: i for i, bid_id in enumerate(analysis.bid_ids)}
    n = len(analysis.bid_ids)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["rank", "bid_id", "supplier", "eligible", "reasons", "price_cents", "kgco2e_per_unit",
                     "price_score", "carbon_score", "quality_score", "total", "p_first", "confidence",
                     *[f"rank_{r + 1}" for r in range(n)], "samples", "seed"])
    for bid in result.ranking:
        i = position.get(bid.bid_id)
        acceptability = [""] * n if i is None else [_probability(x) for x in analysis.rank_acceptability[i]]
        writer.writerow([
            "" if bid.rank is None else bid.rank, bid.bid_id, _cell(bid.supplier), str(bid.eligible).lower(),
            ";".join(bid.reasons), bid.price_cents, bid.kgco2e_per_unit, bid.price_score or "",
            bid.carbon_score or "", bid.quality_score or "", bid.total or "",
            "" if i is None else _probability(analysis.p_first[i]),
            "" if i is None else _probability(analysis.confidence[i]),
            *acceptability, analysis.samples, analysis.seed])
    return out.getvalue()


# Greens, dark to light: rank 1 darkest. Lightness alone carries the order, so it survives colour
# blindness and grey-scale printing.
_STOPS = [(0x00, 0x44, 0x1B), (0x23, 0x8B, 0x45), (0x74, 0xC4, 0x76), (0xC7, 0xE9, 0xC0), (0xF0, 0xF9, 0xEE)]
_FONT = "system-ui, 'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', 'Noto Sans', sans-serif"
WIDTH, LABEL_W, BAR_W, ROW_H, BAR_H, TOP = 980, 280, 560, 24, 16, 96
CHART_TITLE = N_("Rank acceptability")


def rank_colour(rank: int, ranks: int) -> tuple[str, bool]:
    """The fill of rank ``rank`` (1-based) of ``ranks``, and whether text on it should be white."""
    t = 0.0 if ranks <= 1 else (rank - 1) / (ranks - 1)
    x = t * (len(_STOPS) - 1)
    k = min(int(x), len(_STOPS) - 2)
    f = x - k
    rgb = [round(a + (b - a) * f) for a, b in zip(_STOPS[k], _STOPS[k + 1], strict=True)]
    luminance = (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]) / 255
    return "#{:02x}{:02x}{:02x}".format(*rgb), luminance < 0.5


def _text(x: float, y: float, content: str, *, size: int = 12, anchor: str = "start", fill: str = "#1f2933",
          weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" fill="{fill}" '
            f'font-weight="{weight}">{_xml(content)}</text>')


def to_svg(result: EvaluationOut, *, title: str, locale: str) -> str:
    """Stacked bars, one per eligible bid in ranking order: how often it takes each rank."""
    analysis = result.analysis
    n = len(analysis.bid_ids)
    ranks = {b.bid_id: b.rank for b in result.ranking}
    suppliers = {b.bid_id: b.supplier for b in result.ranking}
    ineligible = sum(not b.eligible for b in result.ranking)
    legend_ranks = list(range(1, n + 1)) if n <= 10 else [*range(1, 10), n]
    legend_y = TOP + n * ROW_H + 16
    height = legend_y + 44 + (20 if ineligible else 0)
    heading = translate(CHART_TITLE, locale)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" lang={quoteattr(locale)} font-family={quoteattr(_FONT)} role="img">',
        f"<title>{_xml(heading)}: {_xml(title)}</title>",
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        _text(16, 28, f"{heading} · {title}", size=18, weight="bold"),
        _text(16, 50, translate(N_("Share of {samples} Monte Carlo samples (seed {seed}) in which each bid takes "
                                   "each rank."), locale, samples=analysis.samples, seed=analysis.seed), size=12,
              fill="#52606d"),
        _text(LABEL_W + BAR_W + 24, TOP - 10, translate(N_("Ranked first"), locale), size=12, weight="bold"),
    ]
    for tick in range(0, 101, 25):
        x = LABEL_W + BAR_W * tick / 100
        parts.append(f'<line x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{TOP + n * ROW_H}" stroke="#d9e2ec"/>')
        parts.append(_text(x, TOP - 10, f"{tick}%", size=10, anchor="middle", fill="#52606d"))
    for i, bid_id in enumerate(analysis.bid_ids):
        y = TOP + i * ROW_H
        label = f"{ranks.get(bid_id)}. {suppliers.get(bid_id, '')}"
        parts.append(f"<g><title>{_xml(bid_id)}</title>"
                     f"{_text(LABEL_W - 10, y + BAR_H - 3, label[:40], anchor='end')}</g>")
        parts.append(f'<rect x="{LABEL_W}" y="{y}" width="{BAR_W}" height="{BAR_H}" fill="none" stroke="#9aa5b1" '
                     f'stroke-width="0.5"/>')
        x = float(LABEL_W)
        for r, share in enumerate(analysis.rank_acceptability[i]):
            if share <= 0:
                continue
            w = BAR_W * share
            fill, white = rank_colour(r + 1, n)
            tip = translate(N_("Rank {rank}: {share}"), locale, rank=r + 1, share=f"{share:.1%}")
            parts.append(f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{BAR_H}" fill="{fill}" '
                         f'stroke="#ffffff" stroke-width="0.5"><title>{_xml(tip)}</title></rect>')
            if w >= 34:
                parts.append(_text(x + w / 2, y + BAR_H - 4, f"{share:.0%}", size=10, anchor="middle",
                                   fill="#ffffff" if white else "#1f2933"))
            x += w
        first = analysis.p_first[i]
        parts.append(_text(LABEL_W + BAR_W + 24, y + BAR_H - 3, "<0.1%" if 0 < first < 0.0005 else f"{first:.1%}",
                           weight="bold"))
    parts.append(_text(16, legend_y + 12, translate(N_("Rank"), locale), weight="bold"))
    for k, r in enumerate(legend_ranks):
        x = 64 + k * 58
        fill, _ = rank_colour(r, n)
        parts.append(f'<rect x="{x}" y="{legend_y}" width="16" height="16" fill="{fill}" stroke="#9aa5b1" '
                     f'stroke-width="0.5"/>')
        parts.append(_text(x + 20, legend_y + 12, ("… " if n > 10 and r == n else "") + str(r), size=11))
    if ineligible:
        parts.append(_text(16, legend_y + 40, translate(N_("Ineligible bids, not shown: {count}"), locale,
                                                        count=ineligible), size=12, fill="#52606d"))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
