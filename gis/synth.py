"""Synthetic but realistic village layouts in a projected CRS (metres).

A village's land is a rotated lattice of field blocks whose corners are jittered, so that
neighbouring blocks share edges exactly; each block is cut into long strips of varying width,
the way contract land was divided among households; a few central blocks form the village core,
cut into rows of homestead plots.  Every parcel shares its boundary with its neighbours, so the
layout has no overlaps and no gaps, like real cadastral data.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from shapely import Polygon


@dataclass
class Strip:
    ring: list[tuple[float, float]]
    block: int
    group: int
    index: int  # position inside the block, west/south to east/north
    last: bool


@dataclass
class VillageLayout:
    fields: list[Strip] = field(default_factory=list)
    homesteads: list[Polygon] = field(default_factory=list)
    groups: int = 1
    extent: tuple[float, float, float, float] = (0, 0, 0, 0)


def _lattice(rng, cols, rows, bw, bh, jitter):
    xs = np.arange(cols + 1) * bw
    ys = np.arange(rows + 1) * bh
    gx, gy = np.meshgrid(xs, ys)  # shape (rows+1, cols+1)
    jx = rng.uniform(-jitter, jitter, gx.shape)
    jy = rng.uniform(-jitter, jitter, gy.shape)
    # Keep the outer edge straight-ish so neighbouring villages never touch.
    return gx + jx, gy + jy


def _lerp(p, q, t):
    return (p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t)


def _cuts(rng, n, wobble=0.15):
    """n+1 fractions from 0 to 1 that cut a side into n uneven pieces."""
    w = rng.uniform(1 - wobble * 3, 1 + wobble * 3, n)
    c = np.cumsum(w) / w.sum()
    return [0.0, *c[:-1].tolist(), 1.0]


class _Edges:
    """Lattice edges and the fractions at which parcels meet them.

    Every parcel side lying on a lattice edge carries every meeting point of the parcels on
    the other side too, so neighbours share vertices exactly (no T-junctions, no slivers)."""

    def __init__(self, gx, gy):
        self.gx, self.gy = gx, gy
        self.marks: dict[tuple, set] = {}

    def vertex(self, r, k):
        return (float(self.gx[r, k]), float(self.gy[r, k]))

    @staticmethod
    def h(r, k):  # from (r, k) to (r, k+1)
        return ("h", r, k)

    @staticmethod
    def v(r, k):  # from (r, k) to (r+1, k)
        return ("v", r, k)

    def point(self, e, t):
        kind, r, k = e
        a = self.vertex(r, k)
        b = self.vertex(r, k + 1) if kind == "h" else self.vertex(r + 1, k)
        if t == 0.0:
            return a
        if t == 1.0:
            return b
        return _lerp(a, b, t)

    def mark(self, e, ts):
        self.marks.setdefault(e, set()).update(t for t in ts if 0.0 < t < 1.0)

    def run(self, e, t0, t1):
        """Points along edge e from t0 to t1, t0 included, t1 excluded."""
        inner = sorted(t for t in self.marks.get(e, ()) if min(t0, t1) < t < max(t0, t1))
        if t1 < t0:
            inner.reverse()
        return [self.point(e, t) for t in [t0, *inner]]


def village(rng: np.random.Generator, target_parcels: int, origin: tuple[float, float],
            households: int | None = None) -> VillageLayout:
    """Lay out one village of about `target_parcels` parcels centred on `origin`."""
    hh = households or max(8, int(target_parcels * 0.17))
    nr, nc = 6, 8  # homestead rows and columns in a core block
    core_blocks = max(1, math.ceil(hh / (nr * nc)))
    avg_strips = 6.5
    field_blocks = max(2, round((target_parcels - hh) / avg_strips))
    total_blocks = field_blocks + core_blocks
    cols = max(2, round(math.sqrt(total_blocks * 0.6)))
    rows = max(2, math.ceil(total_blocks / cols))
    bw, bh = rng.uniform(150, 230), rng.uniform(100, 150)
    gx, gy = _lattice(rng, cols, rows, bw, bh, jitter=min(bw, bh) * 0.12)
    edges = _Edges(gx, gy)
    theta = rng.uniform(-0.6, 0.6)
    c, s = math.cos(theta), math.sin(theta)
    cx, cy = cols * bw / 2, rows * bh / 2
    ox, oy = origin

    def tr(p):
        x, y = p[0] - cx, p[1] - cy
        return (round(ox + c * x - s * y, 3), round(oy + s * x + c * y, 3))

    cells = [(r, k) for r in range(rows) for k in range(cols)]
    mid = ((rows - 1) / 2, (cols - 1) / 2)
    by_centre = sorted(cells, key=lambda rc: (rc[0] - mid[0]) ** 2 + (rc[1] - mid[1]) ** 2)
    core = set(by_centre[:core_blocks])
    groups = max(1, min(6, round(hh / 45)))
    along_x = bw >= bh  # strips run along the block's longer side

    # Pass 1: where each block is cut, marked on the lattice edges.
    plans = {}
    for r, k in cells:
        bottom, top, left, right = edges.h(r, k), edges.h(r + 1, k), edges.v(r, k), edges.v(r, k + 1)
        if (r, k) in core:
            rows_t = [i / nr for i in range(nr + 1)]
            cols_t = [j / nc for j in range(nc + 1)]
            edges.mark(left, rows_t)
            edges.mark(right, rows_t)
            edges.mark(bottom, cols_t)
            edges.mark(top, cols_t)
            plans[(r, k)] = ("core", rows_t, cols_t)
        else:
            n = int(rng.integers(3, 11))
            ta, tb = _cuts(rng, n), _cuts(rng, n)
            if along_x:
                edges.mark(left, ta)
                edges.mark(right, tb)
            else:
                edges.mark(bottom, ta)
                edges.mark(top, tb)
            plans[(r, k)] = ("field", ta, tb)

    # Pass 2: rings, carrying every meeting point on the block's sides.
    out = VillageLayout(groups=groups)
    homes_needed = hh
    for block_id, (r, k) in enumerate(cells, start=1):
        bottom, top, left, right = edges.h(r, k), edges.h(r + 1, k), edges.v(r, k), edges.v(r, k + 1)
        group = min(groups - 1, k * groups // cols)
        kind, ta, tb = plans[(r, k)]
        if kind == "core":
            p00, p10 = edges.vertex(r, k), edges.vertex(r, k + 1)
            p01, p11 = edges.vertex(r + 1, k), edges.vertex(r + 1, k + 1)

            def grid(i, j, left=left, right=right, bottom=bottom, top=top, ta=ta, tb=tb,
                     p00=p00, p01=p01, p10=p10, p11=p11):
                if j == 0:
                    return edges.point(left, ta[i])
                if j == nc:
                    return edges.point(right, ta[i])
                if i == 0:
                    return edges.point(bottom, tb[j])
                if i == nr:
                    return edges.point(top, tb[j])
                return _lerp(_lerp(p00, p01, ta[i]), _lerp(p10, p11, ta[i]), tb[j])

            for i in range(nr):
                for j in range(nc):
                    if homes_needed <= 0:
                        break
                    ring = []
                    ring += edges.run(bottom, tb[j], tb[j + 1]) if i == 0 else [grid(i, j)]
                    ring += edges.run(right, ta[i], ta[i + 1]) if j == nc - 1 else [grid(i, j + 1)]
                    ring += edges.run(top, tb[j + 1], tb[j]) if i == nr - 1 else [grid(i + 1, j + 1)]
                    ring += edges.run(left, ta[i + 1], ta[i]) if j == 0 else [grid(i + 1, j)]
                    out.homesteads.append(Polygon([tr(p) for p in ring]))
                    homes_needed -= 1
            continue
        n = len(ta) - 1
        for i in range(n):
            if along_x:
                ring = edges.run(bottom, 0.0, 1.0) if i == 0 else [edges.point(left, ta[i])]
                ring += edges.run(right, tb[i], tb[i + 1])
                ring += edges.run(top, 1.0, 0.0) if i == n - 1 else [edges.point(right, tb[i + 1])]
                ring += edges.run(left, ta[i + 1], ta[i])
            else:
                ring = edges.run(bottom, ta[i], ta[i + 1])
                ring += edges.run(right, 0.0, 1.0) if i == n - 1 else [edges.point(bottom, ta[i + 1])]
                ring += edges.run(top, tb[i + 1], tb[i])
                ring += edges.run(left, 1.0, 0.0) if i == 0 else [edges.point(top, tb[i])]
            out.fields.append(Strip([tr(p) for p in _dedupe(ring)], block_id, group, i, i == n - 1))
    corners = [tr(edges.vertex(0, 0)), tr(edges.vertex(rows, cols)), tr(edges.vertex(0, cols)),
               tr(edges.vertex(rows, 0))]
    out.extent = (min(p[0] for p in corners), min(p[1] for p in corners),
                  max(p[0] for p in corners), max(p[1] for p in corners))
    return out


def _dedupe(ring):
    out = []
    for p in ring:
        if not out or out[-1] != p:
            out.append(p)
    if len(out) > 1 and out[0] == out[-1]:
        out.pop()
    return out


def village_spacing(target_parcels: int) -> float:
    """Distance between village origins that keeps rotated villages apart."""
    blocks = target_parcels * 0.135  # field blocks + core blocks, as in village()
    diagonal = math.sqrt(blocks) * 263 * 1.15  # the lattice's diagonal, with jitter
    return diagonal + 300
