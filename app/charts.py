"""Server-rendered SVG charts (no script, no CDN): horizontal progress bars and bar groups.
Pure functions of their data; every chart has a title for screen readers (role="img",
aria-label) and its figures as text, so it reads without the picture."""
from __future__ import annotations

from html import escape

COLOURS = ("#1a7f37", "#4c8eda", "#d4a72c", "#bf3989", "#8250df", "#57606a")


def progress_bars(title: str, rows: list[tuple[str, int, int]], width: int = 640,
                  unit: str = "") -> str:
    """One bar per row: (label, done, total); the bar shows done of total and the figures."""
    bar_h, gap, label_w = 18, 8, 170
    h = len(rows) * (bar_h + gap) + gap
    inner = width - label_w - 90
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {h}" '
           f'width="{width}" height="{h}" role="img" aria-label="{escape(title)}">']
    for i, (label, done, total) in enumerate(rows):
        y = gap + i * (bar_h + gap)
        frac = (done / total) if total else 0
        out.append(f'<text x="0" y="{y + 13}" font-size="12">{escape(str(label))}</text>')
        out.append(f'<rect x="{label_w}" y="{y}" width="{inner}" height="{bar_h}" '
                   f'fill="#eaeef2"/>')
        out.append(f'<rect x="{label_w}" y="{y}" width="{inner * min(frac, 1):.1f}" '
                   f'height="{bar_h}" fill="{COLOURS[0]}"/>')
        out.append(f'<text x="{label_w + inner + 6}" y="{y + 13}" font-size="12">'
                   f'{done}/{total}{escape(unit)} ({frac:.0%})</text>')
    out.append("</svg>")
    return "".join(out)


def grouped_bars(title: str, categories: list[str], series: dict[str, list[float]],
                 width: int = 640, height: int = 220, fmt=lambda v: f"{v:g}") -> str:
    """Bars per category (x) for each series (colour), with a legend and the value on top."""
    names = list(series)
    top = max([v for vs in series.values() for v in vs] + [1])
    left, bottom, item_w, row_h = 10, 40, 150, 16
    # the legend wraps (a county has a dozen townships: at one row of 150 px each the fifth
    # was drawn outside the picture); the chart grows by the extra rows
    per_row = max(1, (width - 2 * left) // item_w)
    rows = max(1, -(-len(names) // per_row))
    legend = 18 + (rows - 1) * row_h
    height += (rows - 1) * row_h
    plot_h = height - bottom - legend - 14
    n = max(len(categories), 1)
    slot = (width - left * 2) / n
    bw = max(4, (slot - 10) / max(len(names), 1))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} '
           f'{height}" width="{width}" height="{height}" role="img" '
           f'aria-label="{escape(title)}">']
    for j, name in enumerate(names):
        x, y = left + (j % per_row) * item_w, 2 + (j // per_row) * row_h
        out.append(f'<rect x="{x}" y="{y}" width="10" height="10" fill="{COLOURS[j % 6]}"/>'
                   f'<text x="{x + 14}" y="{y + 9}" font-size="11">{escape(name)}</text>')
    base = legend + 14 + plot_h
    for i, cat in enumerate(categories):
        x0 = left + i * slot + 5
        for j, name in enumerate(names):
            v = series[name][i]
            bh = plot_h * v / top
            x = x0 + j * bw
            out.append(f'<rect x="{x:.1f}" y="{base - bh:.1f}" width="{bw - 1:.1f}" '
                       f'height="{bh:.1f}" fill="{COLOURS[j % 6]}"><title>{escape(cat)} · '
                       f'{escape(name)}: {escape(fmt(v))}</title></rect>')
            if v:
                out.append(f'<text x="{x + bw / 2:.1f}" y="{base - bh - 2:.1f}" font-size="9" '
                           f'text-anchor="middle">{escape(fmt(v))}</text>')
        out.append(f'<text x="{x0 + slot / 2 - 5:.1f}" y="{base + 14}" font-size="10" '
                   f'text-anchor="middle">{escape(cat)}</text>')
    out.append(f'<line x1="{left}" y1="{base}" x2="{width - left}" y2="{base}" stroke="#999"/>')
    out.append("</svg>")
    return "".join(out)
