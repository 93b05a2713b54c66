"""Companion trainer: `python -m generation.train gan|lstm` (see `run.train_and_register`)."""

from generation.train.progress import ProgressCallback, TrainProgress

__all__ = ["ProgressCallback", "TrainProgress"]
