"""SVG charts: round ticks, readable numbers, one point per value, escaped text, gaps."""

from __future__ import annotations

import re
from datetime import date, timedelta
from xml.etree import ElementTree

from gateway.dashboard.charts import Series, format_value, line_chart, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"
DAYS = [date(2026, 2, 1) + timedelta(days=n) for n in range(5)]


def svg_of(figure: str) -> ElementTree.Element:
    return ElementTree.fromstring(re.search(r"<svg.*</svg>", figure, re.S).group(0))


def test_ticks_are_round_and_reach_the_maximum():
    assert nice_ticks(87) == [0, 25, 50, 75, 100]
    assert nice_ticks(4) == [0, 1, 2, 3, 4]
    assert nice_ticks(0.123) == [0, 0.05, 0.1, 0.15]
    assert nice_ticks(0) == [0, 0.25, 0.5, 0.75, 1]


def test_values_read_as_people_expect():
    assert format_value(1234567, "count") == "1,234,567"
    assert format_value(1234567, "count", compact=True) == "1.2M"
    assert format_value(0.01234, "usd") == "$0.0123"
    assert format_value(2500, "usd", compact=True) == "$2.5k"
    assert format_value(0.125, "percent") == "12.50%"
    assert format_value(0.1, "percent", compact=True) == "10%"
    assert format_value(350, "ms") == "350 ms"
    assert format_value(2500, "ms", compact=True) == "2.5 s"


def test_a_chart_has_a_title_a_description_a_point_per_value_and_a_legend():
    figure = line_chart(
        title="Requests per day",
        days=DAYS,
        series=[Series("m1", (1, 2, 3, 4, 5)), Series("m2", (0, 0, 1, 0, 0))],
    )
    svg = svg_of(figure)

    assert svg.get("role") == "img"
    assert svg.get("aria-labelledby") == "chart-requests-per-day-title chart-requests-per-day-desc"
    assert svg.find(f"{SVG}title").text == "Requests per day"
    assert "m1: total 15; m2: total 1" in svg.find(f"{SVG}desc").text
    points = svg.findall(f".//{SVG}circle")
    assert len(points) == 10
    assert points[4].find(f"{SVG}title").text == "m1, 2026-02-05: 5"
    assert re.findall(r"<li>.*?</span>(.*?)</li>", figure) == ["m1", "m2"]


def test_higher_values_are_drawn_higher():
    svg = svg_of(line_chart(title="t", days=DAYS[:2], series=[Series("m", (1, 3))]))

    low, high = (float(c.get("cy")) for c in svg.iter(f"{SVG}circle"))
    assert high < low  # SVG's y grows downwards


def test_missing_values_leave_a_gap_in_the_line():
    svg = svg_of(line_chart(title="t", days=DAYS, series=[Series("m", (1, 2, None, 4, 5))]))

    path = svg.find(f".//{SVG}path").get("d")
    assert path.count("M") == 2 and len(svg.findall(f".//{SVG}circle")) == 4


def test_names_are_escaped():
    figure = line_chart(title="<b>t</b>", days=DAYS[:1], series=[Series("<script>x", (1,))])

    assert "<script>" not in figure and "&lt;script&gt;x" in figure
    svg_of(figure)  # still well-formed XML


def test_an_empty_chart_says_so():
    svg = svg_of(line_chart(title="t", days=DAYS, series=[]))

    assert "No data in this range" in ElementTree.tostring(svg, encoding="unicode")
