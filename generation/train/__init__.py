"""Companion trainer: `python -m generation.train gan|vae|lstm` (see `run.train_and_register`): recipes,
training data, the promotion gate (evaluate) and progress. Never imports generation.service."""

from generation.train.progress import ProgressCallback, TrainProgress

__all__ = ["ProgressCallback", "TrainProgress"]
