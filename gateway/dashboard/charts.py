"""Server-side charts: daily series in, an accessible inline SVG line chart out.

No JavaScript and no network: the page works offline and in any browser. Each chart is a
`<figure>` holding an `<svg role="img">` with a `<title>` and a `<desc>` summarising the data,
a y axis with round ticks, dated x labels, one path and one titled point per value (hover
shows the number), and an HTML legend beneath.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import slugify

# Distinguishable for common colour-vision deficiencies (Okabe-Ito, with a grey).
PALETTE = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#f0e442",
    "#6b7280",
)
WIDTH, HEIGHT = 600, 240
TOP, RIGHT, BOTTOM, LEFT = 14, 14, 34, 58
MAX_X_LABELS = 8
MAX_POINTS_PER_SERIES = 120  # beyond this, points would only blur the line


@dataclass(frozen=True)
class Series:
    """One line: a name for the legend and a value per day (None: no data that day)."""

    name: str
    values: tuple[float | None, ...]

    @property
    def total(self) -> float:
        return sum(v for v in self.values if v is not None)


def format_value(value: float, unit: str, *, compact: bool = False) -> str:
    """A number as people read it: `1,234`, `1.2k`, `$0.0123`, `4.5%`, `350 ms`."""
    if unit == "percent":
        return f"{100 * value:.1f}%".replace(".0%", "%") if compact else f"{100 * value:.2f}%"
    if unit == "usd":
        if compact:
            return "$" + _compact(value, decimals=2)
        return f"${value:,.4f}" if abs(value) < 100 else f"${value:,.2f}"
    if unit == "ms":
        if compact and value >= 1000:
            return _compact(value / 1000, decimals=2) + " s"
        return f"{value:,.0f} ms"
    return _compact(value) if compact else f"{value:,.0f}"


def _compact(value: float, decimals: int = 1) -> str:
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / threshold:.{decimals}f}".rstrip("0").rstrip(".") + suffix
    if value == int(value):
        return f"{int(value)}"
    return f"{value:.{decimals + 1}f}".rstrip("0").rstrip(".")


def nice_ticks(maximum: float, count: int = 4) -> list[float]:
    """Round tick values from 0 to at least `maximum` (1, 2, 2.5 or 5 times a power of ten)."""
    if maximum <= 0:
        maximum = 1.0
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if raw <= m * magnitude)
    steps = math.ceil(maximum / step - 1e-9)
    return [round(i * step, 12) for i in range(steps + 1)]


def line_chart(
    *,
    title: str,
    days: Sequence[date],
    series: Sequence[Series],
    unit: str = "count",
    chart_id: str | None = None,
) -> SafeString:
    """A `<figure>` with the SVG line chart and its legend; every text is escaped."""
    chart_id = slugify(chart_id or "chart-" + title)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    present = [v for s in series for v in s.values if v is not None]
    ticks = nice_ticks(max(present, default=0))
    top = ticks[-1]

    def x(i: int) -> float:
        return LEFT + (plot_w / 2 if len(days) == 1 else i * plot_w / (len(days) - 1))

    def y(value: float) -> float:
        return TOP + plot_h - value / top * plot_h

    parts = [
        f'<svg class="chart-svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(_describe(days, series, unit))}</desc>',
        *_y_axis(ticks, y, plot_w, unit),
        *_x_axis(days, x, plot_h),
    ]
    if not present:
        parts.append(
            f'<text class="empty" x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" '
            'text-anchor="middle">No data in this range</text>'
        )
    for index, line in enumerate(series):
        parts.extend(_series(line, PALETTE[index % len(PALETTE)], days, x, y, unit))
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch" style="background:{PALETTE[i % len(PALETTE)]}"></span>'
        f"{escape(s.name)}</li>"
        for i, s in enumerate(series)
    )
    # Safe: every text interpolated above went through escape(); ids are slugs.
    return mark_safe(
        f'<figure class="chart" id="{chart_id}"><figcaption>{escape(title)}</figcaption>'
        f'{"".join(parts)}<ul class="legend" aria-label="Legend">{legend}</ul></figure>'
    )


def _describe(days: Sequence[date], series: Sequence[Series], unit: str) -> str:
    if not days:
        return "No days selected."
    span = f"From {days[0].isoformat()} to {days[-1].isoformat()}."
    if not series:
        return f"{span} No data."
    return f"{span} " + "; ".join(_summary(s, unit) for s in series) + "."


def _summary(line: Series, unit: str) -> str:
    # Counts and money add up over days; rates and latencies do not, so say their peak.
    if unit in ("count", "usd"):
        return f"{line.name}: total {format_value(line.total, unit)}"
    peak = max((v for v in line.values if v is not None), default=0)
    return f"{line.name}: peak {format_value(peak, unit)}"


def _y_axis(ticks: list[float], y, plot_w: float, unit: str) -> list[str]:
    parts = ['<g class="axis y-axis">']
    for tick in ticks:
        ty = y(tick)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_w}" y1="{ty:.1f}" y2="{ty:.1f}"/>'
        )
        parts.append(
            f'<text x="{LEFT - 8}" y="{ty + 4:.1f}" text-anchor="end">'
            f"{escape(format_value(tick, unit, compact=True))}"
            "</text>"
        )
    parts.append("</g>")
    return parts


def _x_axis(days: Sequence[date], x, plot_h: float) -> list[str]:
    base = TOP + plot_h
    parts = [
        '<g class="axis x-axis">',
        f'<line class="baseline" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base}" y2="{base}"/>',
    ]
    every = max(1, math.ceil(len(days) / MAX_X_LABELS))
    hourly = bool(days) and isinstance(days[0], datetime)
    if hourly and every > 24:
        every = math.ceil(every / 24) * 24  # whole days, so each label falls on a midnight
    for i, day in enumerate(days):
        if i % every:
            continue
        # Hours (datetimes) are labelled "06:00", midnights and days "Mar 14".
        label = f"{day:%H}:00" if hourly and day.hour else f"{day.strftime('%b')} {day.day}"
        parts.append(
            f'<text x="{x(i):.1f}" y="{base + 20}" text-anchor="middle">'
            f"<title>{day.isoformat()}</title>{label}</text>"
        )
    parts.append("</g>")
    return parts


def _series(line: Series, color: str, days: Sequence[date], x, y, unit: str) -> list[str]:
    path, pen_down = [], False
    for i, value in enumerate(line.values):
        if value is None:
            pen_down = False
            continue
        path.append(f"{'L' if pen_down else 'M'}{x(i):.1f},{y(value):.1f}")
        pen_down = True
    name = escape(line.name)
    parts = [
        f'<g class="series" data-series="{name}">',
        f'<path d="{" ".join(path)}" fill="none" stroke="{color}" stroke-width="2" '
        'stroke-linejoin="round" stroke-linecap="round"/>',
    ]
    if len(days) <= MAX_POINTS_PER_SERIES:
        for i, value in enumerate(line.values):
            if value is None:
                continue
            label = f"{line.name}, {days[i].isoformat()}: {format_value(value, unit)}"
            parts.append(
                f'<circle class="point" cx="{x(i):.1f}" cy="{y(value):.1f}" r="3" '
                f'fill="{color}" data-value="{value}"><title>{escape(label)}</title></circle>'
            )
    parts.append("</g>")
    return parts
