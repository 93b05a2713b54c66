"""Charts: valid PNGs of the intended size for full, empty and odd inputs."""

from __future__ import annotations

import io

from PIL import Image

from bot.charts import loss_chart, usage_chart

DAYS = [f"2026-12-{day:02d}" for day in range(1, 8)]


def size_of(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        image.verify()
        return image.size


def test_usage_chart_draws_full_and_empty_weeks() -> None:
    full = {
        day: {"answered": 5, "declined": 1, "images": 2, "texts": 1, "helpful": 3, "unhelpful": 1}
        for day in DAYS
    }
    assert size_of(usage_chart(DAYS, full)) == (630, 324)
    assert size_of(usage_chart(DAYS, {})) == (630, 324)  # a quiet week: no bars, no votes


def test_loss_chart_draws_one_line_per_phase() -> None:
    points = [("train", step, 1.0 / step) for step in range(1, 50)] + [("refit", 1, 0.9), ("refit", 2, 0.5)]
    assert size_of(loss_chart(points, "intent intent-1a2b")) == (630, 324)
    assert size_of(loss_chart([("train", 1, float("nan")), ("train", 2, 1e9)], "odd")) == (630, 324)
