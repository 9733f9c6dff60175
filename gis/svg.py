"""SVG sketches of parcels with their neighbours, a north arrow and a scale bar."""
from __future__ import annotations

import math
from html import escape

import shapely


def _nice(length: float) -> float:
    """A round scale-bar length (1, 2 or 5 × 10^k metres) about a quarter of `length`."""
    target = length / 4
    k = 10 ** math.floor(math.log10(target)) if target > 0 else 1
    for m in (5, 2, 1):
        if m * k <= target:
            return m * k
    return k


def _path(geom, tx) -> str:
    parts = []
    polys = geom.geoms if hasattr(geom, "geoms") else [geom]
    for poly in polys:
        for ring in [poly.exterior, *poly.interiors]:
            pts = [tx(x, y) for x, y in ring.coords]
            parts.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in pts) + " Z")
    return " ".join(parts)


def plan(subjects, labels=(), neighbours=(), neighbour_labels=(), size: int = 420,
         css_class: str = "parcel-sketch", title: str = "") -> str:
    """Subject parcels (highlighted and labelled) among neighbours, in a projected CRS
    (metres): the sketch on a parcel page and the map on a certificate."""
    margin = 30
    union = shapely.union_all(list(subjects))
    focus = union.buffer(max(math.sqrt(union.area) * 0.3, 10)) if len(subjects) > 1 \
        else union.buffer(max(math.sqrt(union.area) * 0.6, 10))
    minx, miny, maxx, maxy = focus.bounds
    span = max(maxx - minx, maxy - miny) or 1
    scale = (size - 2 * margin) / span

    def tx(x, y):
        return margin + (x - minx) * scale, size - margin - (y - miny) * scale

    clip = shapely.box(minx, miny, maxx, maxy)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" '
           f'width="{size}" height="{size}" class="{css_class}" role="img" '
           f'aria-label="{escape(title or "parcel sketch: " + " ".join(str(x) for x in labels if x))}">',
           f'<rect width="{size}" height="{size}" fill="#fbfaf5" stroke="#ccc"/>']
    for i, n in enumerate(neighbours):
        g = n.intersection(clip)
        if g.is_empty:
            continue
        out.append(f'<path d="{_path(g, tx)}" fill="#eef2e6" stroke="#8a9a7a" '
                   f'stroke-width="1" class="neighbour"/>')
        if i < len(neighbour_labels) and neighbour_labels[i]:
            c = g.representative_point()
            x, y = tx(c.x, c.y)
            out.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="9" fill="#555" '
                       f'text-anchor="middle">{escape(neighbour_labels[i])}</text>')
    for i, s in enumerate(subjects):
        out.append(f'<path d="{_path(s, tx)}" fill="#f6c945" fill-opacity="0.75" '
                   f'stroke="#b3540e" stroke-width="2" class="subject"/>')
        if i < len(labels) and labels[i]:
            c = s.representative_point()
            x, y = tx(c.x, c.y)
            out.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="11" font-weight="bold" '
                       f'text-anchor="middle">{escape(labels[i])}</text>')
    # North arrow
    out.append(f'<g class="north"><path d="M{size - 24},40 L{size - 18},22 L{size - 12},40 Z" '
               f'fill="#333"/><text x="{size - 18}" y="18" font-size="11" '
               f'text-anchor="middle">N</text></g>')
    # Scale bar
    bar = _nice(span)
    px = bar * scale
    y0 = size - 12
    out.append(f'<g class="scale-bar"><line x1="{margin}" y1="{y0}" x2="{margin + px:.1f}" '
               f'y2="{y0}" stroke="#000" stroke-width="3"/><text x="{margin + px + 4:.1f}" '
               f'y="{y0 + 4}" font-size="10">{bar:g} m</text></g>')
    out.append("</svg>")
    return "".join(out)


def sketch(parcel, neighbours=(), size: int = 420, label: str = "",
           neighbour_labels=()) -> str:
    """One parcel among its neighbours (the parcel page)."""
    return plan([parcel], [label], neighbours, neighbour_labels, size)
