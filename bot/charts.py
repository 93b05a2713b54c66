"""Charts as PNG bytes, drawn with matplotlib's Agg canvas directly (no pyplot: no global state, safe
in a worker thread). Callers run them off the event loop. Labels are English: the default fonts have no
Chinese glyphs, and the message around a chart carries the user's language."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

WIDTH_IN, HEIGHT_IN, DPI = 7.0, 3.6, 90
SERIES = (("answered", "#2e7d32"), ("declined", "#c62828"), ("images", "#1565c0"), ("texts", "#6a1b9a"))


def _png(figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def usage_chart(days: Sequence[str], per_day: Mapping[str, Mapping[str, int]]) -> bytes:
    """Bars per day (answered, declined, images, texts) and the share of helpful votes as a line."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), layout=None)
    figure.subplots_adjust(left=0.08, right=0.9, top=0.9, bottom=0.12)
    axes = figure.add_subplot()
    width = 0.8 / len(SERIES)
    positions = range(len(days))
    for n, (key, colour) in enumerate(SERIES):
        values = [per_day.get(day, {}).get(key, 0) for day in days]
        axes.bar([x + (n - 1.5) * width for x in positions], values, width, label=key, color=colour)
    axes.set_xticks(list(positions), [day[5:] for day in days])
    tallest = max((row.get(key, 0) for row in per_day.values() for key, _ in SERIES), default=0)
    axes.set_ylim(0, max(1, tallest) * 1.35)  # headroom for the legend
    axes.set_ylabel("requests")
    axes.yaxis.get_major_locator().set_params(integer=True)
    ratio = axes.twinx()
    shares = []
    for day in days:
        row = per_day.get(day, {})
        votes = row.get("helpful", 0) + row.get("unhelpful", 0)
        shares.append(100 * row.get("helpful", 0) / votes if votes else float("nan"))
    ratio.plot(list(positions), shares, "o-", color="#ef6c00", label="helpful %")
    ratio.set_ylim(0, 140)
    ratio.set_ylabel("helpful votes %")
    handles = axes.get_legend_handles_labels()[0] + ratio.get_legend_handles_labels()[0]
    labels = axes.get_legend_handles_labels()[1] + ratio.get_legend_handles_labels()[1]
    axes.legend(handles, labels, loc="upper left", fontsize="small", ncols=5)
    axes.set_title("Last 7 days")
    return _png(figure)


def loss_chart(points: Sequence[tuple[str, int, float]], title: str) -> bytes:
    """Training loss against step, one line per phase (e.g. train, then refit)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), layout=None)
    figure.subplots_adjust(left=0.08, right=0.97, top=0.9, bottom=0.14)
    axes = figure.add_subplot()
    phases: dict[str, list[tuple[int, float]]] = {}
    for phase, step, loss in points:
        phases.setdefault(phase, []).append((step, loss))
    for phase, series in phases.items():
        axes.plot([s for s, _ in series], [loss for _, loss in series], label=phase)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.set_title(title)
    if len(phases) > 1:
        axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return _png(figure)
