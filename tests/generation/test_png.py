"""The hand-written grey PNG encoder: what it writes is a PNG that a real decoder reads back exactly."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from generation.service.png import encode_grey_png


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (280, 552)])
def test_pillow_decodes_the_same_pixels(shape: tuple[int, int]) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    with Image.open(io.BytesIO(encode_grey_png(pixels))) as decoded:
        decoded.load()  # checks every chunk's CRC and the zlib stream
        assert decoded.format == "PNG" and decoded.mode == "L"
        assert decoded.size == (shape[1], shape[0])
        assert np.array_equal(np.asarray(decoded), pixels)


def test_non_contiguous_views_are_encoded_as_they_look() -> None:
    pixels = np.arange(64, dtype=np.uint8).reshape(8, 8)[::2, 1::3]
    with Image.open(io.BytesIO(encode_grey_png(pixels))) as decoded:
        assert np.array_equal(np.asarray(decoded), pixels)


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((4, 4), dtype=np.float32),
        np.zeros((4, 4, 3), dtype=np.uint8),
        np.zeros((0, 4), dtype=np.uint8),
    ],
)
def test_refuses_what_is_not_a_grey_image(pixels: np.ndarray) -> None:
    with pytest.raises(ValueError, match="2-D uint8"):
        encode_grey_png(pixels)
