"""Charts as server-side SVG: no script, no third-party service, readable in print.

Colours come from the Okabe–Ito palette (distinguishable with the common colour-vision
deficiencies), every series is also told apart by a pattern or a marker, and every number
is written next to its mark, so no chart depends on colour alone.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

from markupsafe import Markup, escape

BLUE = "#0072B2"
ORANGE = "#E69F00"
INK = "#1b1f24"
GRID = "#c9d0d8"
FONT = 'font-family="system-ui, DejaVu Sans, sans-serif"'


def _svg(width: int, height: int, title: str, body: str) -> Markup:
    # viewBox + width 100% in CSS: the chart scales down on a phone and keeps its proportions.
    # Every label that comes from data went through escape(); numbers are formatted here.
    return Markup(  # noqa: S704
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" {FONT} font-size="13">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def _hatch(pattern_id: str, colour: str) -> str:
    return (
        f'<pattern id="{pattern_id}" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{colour}" stroke-width="3"/></pattern>'
    )


def funnel(steps: Sequence[tuple[str, int, int]], title: str = "Funnel") -> Markup:
    """Horizontal bars per step: people (solid) above all requests incl. machines (hatched)."""
    label_w, bar_w, row_h = 130, 420, 34
    width, height = label_w + bar_w + 70, 40 + row_h * len(steps)
    top = max([raw for _, _, raw in steps] + [1])
    parts = [f"<defs>{_hatch('raw-hatch', ORANGE)}</defs>"]
    parts.append(
        f'<rect x="{label_w}" y="6" width="14" height="12" fill="{BLUE}"/>'
        f'<text x="{label_w + 20}" y="17">people</text>'
        f'<rect x="{label_w + 90}" y="6" width="14" height="12" fill="url(#raw-hatch)" '
        f'stroke="{ORANGE}"/><text x="{label_w + 110}" y="17">all, incl. machines</text>'
    )
    for i, (label, human, raw) in enumerate(steps):
        y = 30 + i * row_h
        human_w = bar_w * human / top
        raw_w = bar_w * raw / top
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{human_w:.1f}" height="14" fill="{BLUE}"/>'
            f'<rect x="{label_w}" y="{y + 17}" width="{raw_w:.1f}" height="10" '
            f'fill="url(#raw-hatch)" stroke="{ORANGE}" stroke-width="1"/>'
            f'<text x="{label_w + human_w + 6:.1f}" y="{y + 14}" font-weight="600">{human}</text>'
            f'<text x="{label_w + raw_w + 6:.1f}" y="{y + 27}" font-size="11">{raw}</text>'
        )
    return _svg(width, height, title, "".join(parts))


def money_over_time(
    days: Sequence[tuple[dt.date, float]], currency: str, title: str = "Collected over time"
) -> Markup:
    """Cumulative money collected per day as a step line with a marker on each paying day."""
    width, height, left, right, top, bottom = 640, 240, 70, 20, 20, 40
    inner_w, inner_h = width - left - right, height - top - bottom
    running, points = 0.0, []
    for day, amount in days:
        running += amount
        points.append((day, running))
    first, last = points[0][0], points[-1][0]
    span = max((last - first).days, 1)
    peak = _nice(points[-1][1])
    parts = []
    for k in range(5):
        value = peak * k / 4
        y = top + inner_h - inner_h * k / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:,.0f}</text>'
        )

    def xy(day: dt.date, value: float) -> tuple[float, float]:
        x = left + inner_w * ((day - first).days / span if len(points) > 1 else 0.5)
        return x, top + inner_h - inner_h * value / peak

    path, previous = [], None
    for day, value in points:
        x, y = xy(day, value)
        if previous is None:
            path.append(f"M{x:.1f},{top + inner_h:.1f} L{x:.1f},{y:.1f}")
        else:
            path.append(f"L{x:.1f},{previous:.1f} L{x:.1f},{y:.1f}")
        previous = y
    parts.append(f'<path d="{" ".join(path)}" fill="none" stroke="{BLUE}" stroke-width="2.5"/>')
    for day, value in points:
        x, y = xy(day, value)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#fff" stroke="{BLUE}" stroke-width="2">'
            f"<title>{day.isoformat()}: {value:,.2f} {escape(currency)}</title></circle>"
        )
    if first == last:
        parts.append(
            f'<text x="{left + inner_w / 2}" y="{height - 12}" text-anchor="middle">'
            f"{first.isoformat()}</text>"
        )
    else:
        parts.append(
            f'<text x="{left}" y="{height - 12}">{first.isoformat()}</text>'
            f'<text x="{width - right}" y="{height - 12}" text-anchor="end">'
            f"{last.isoformat()}</text>"
        )
    parts.append(
        f'<text x="{left + 4}" y="{top + 12}" font-weight="600">'
        f"{points[-1][1]:,.2f} {escape(currency)}</text>"
    )
    return _svg(width, height, title, "".join(parts))


def _nice(value: float) -> float:
    """A round axis maximum at or above the value."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def intervals(
    rows: Sequence[tuple[str, float | None, float, float, int]],
    title: str = "Paid share by variant, with 95 % intervals",
) -> Markup:
    """Each variant's rate as a dot with its interval as a whisker, 0–100 % on one scale."""
    label_w, plot_w, row_h = 110, 440, 32
    width, height = label_w + plot_w + 110, 36 + row_h * len(rows)
    parts = []
    for k in range(0, 101, 25):
        x = label_w + plot_w * k / 100
        parts.append(
            f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{height - 6}" stroke="{GRID}"/>'
            f'<text x="{x:.1f}" y="14" text-anchor="middle" font-size="11">{k} %</text>'
        )
    for i, (label, rate, low, high, n) in enumerate(rows):
        y = 36 + i * row_h
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 4}" text-anchor="end">{escape(label)}</text>'
        )
        if rate is None:
            parts.append(f'<text x="{label_w + 4}" y="{y + 4}">no debtors</text>')
            continue
        x_low, x_high = label_w + plot_w * low, label_w + plot_w * high
        x = label_w + plot_w * rate
        parts.append(
            f'<line x1="{x_low:.1f}" y1="{y}" x2="{x_high:.1f}" y2="{y}" stroke="{INK}" '
            f'stroke-width="2"/><line x1="{x_low:.1f}" y1="{y - 6}" x2="{x_low:.1f}" '
            f'y2="{y + 6}" stroke="{INK}" stroke-width="2"/><line x1="{x_high:.1f}" '
            f'y1="{y - 6}" x2="{x_high:.1f}" y2="{y + 6}" stroke="{INK}" stroke-width="2"/>'
            f'<rect x="{x - 5:.1f}" y="{y - 5}" width="10" height="10" fill="{BLUE}"/>'
            f'<text x="{label_w + plot_w + 8}" y="{y + 4}">{rate * 100:.1f} % (n={n})</text>'
        )
    return _svg(width, height, title, "".join(parts))


def activity(grid: Sequence[Sequence[int]], title: str = "When debtors act") -> Markup:
    """A weekday × hour map: darker means more actions; each cell names its count."""
    days = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    cell, left, top = 24, 44, 22
    width, height = left + 24 * cell + 10, top + 7 * cell + 40
    peak = max((max(row) for row in grid), default=0) or 1
    # One hue, lightness only: reads the same for every colour vision and in grey print.
    ramp = ("#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b")
    parts = []
    for hour in range(0, 24, 3):
        parts.append(
            f'<text x="{left + hour * cell + cell / 2}" y="{top - 6}" text-anchor="middle" '
            f'font-size="11">{hour:02d}</text>'
        )
    for d, row in enumerate(grid):
        y = top + d * cell
        parts.append(f'<text x="{left - 6}" y="{y + 16}" text-anchor="end">{days[d]}</text>')
        for hour, count in enumerate(row):
            level = 0 if count == 0 else 1 + min(3, int(3.999 * count / peak))
            colour = ramp[level]
            parts.append(
                f'<rect x="{left + hour * cell}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                f'fill="{colour}" stroke="{GRID}" stroke-width="0.5"><title>{days[d]} '
                f"{hour:02d}:00–{hour:02d}:59 UTC: {count}</title></rect>"
            )
            if count:
                ink = "#fff" if level >= 3 else INK
                parts.append(
                    f'<text x="{left + hour * cell + (cell - 2) / 2}" y="{y + 16}" '
                    f'text-anchor="middle" font-size="10" fill="{ink}">{count}</text>'
                )
    legend_y = top + 7 * cell + 14
    parts.append(f'<text x="{left}" y="{legend_y + 12}" font-size="11">fewer</text>')
    for i, colour in enumerate(ramp):
        parts.append(
            f'<rect x="{left + 40 + i * 20}" y="{legend_y}" width="18" height="14" '
            f'fill="{colour}" stroke="{GRID}"/>'
        )
    parts.append(
        f'<text x="{left + 148}" y="{legend_y + 12}" font-size="11">more (hours in UTC)</text>'
    )
    return _svg(width, height, title, "".join(parts))
