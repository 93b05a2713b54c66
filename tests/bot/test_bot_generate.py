"""Reading /image's arguments: digit, count and the image model, in either order the help shows."""

from __future__ import annotations

import pytest

from bot.handlers.generate import DEFAULT_IMAGE_COUNT, parse_image_args


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ("", (None, DEFAULT_IMAGE_COUNT, None)),
        ("7", (7, DEFAULT_IMAGE_COUNT, None)),
        ("7 4", (7, 4, None)),
        ("7 vae", (7, DEFAULT_IMAGE_COUNT, "vae")),
        ("7 4 gan", (7, 4, "gan")),
        ("vae 7 4", (7, 4, "vae")),
        ("VAE 0", (0, DEFAULT_IMAGE_COUNT, "vae")),
    ],
)
def test_valid_arguments(arguments: str, expected: tuple) -> None:
    assert parse_image_args(arguments.split()) == expected


@pytest.mark.parametrize(
    "arguments",
    ["vae", "gan", "7 vea", "vea 7", "vae vae 7", "7 vae 4", "vae 7 4 2", "12 vae", "vae 3 17", "x"],
)
def test_invalid_arguments(arguments: str) -> None:
    assert parse_image_args(arguments.split()) is None
