"""Latency measurement shared by `python -m knowledge bench` and benchmarks/knowledge_speed.py."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from knowledge.service import KnowledgeBase


@dataclass(frozen=True)
class Latency:
    """Milliseconds: in-process ask p50/p99 and one bare query encoding p50, measured in one run."""

    ask_p50: float
    ask_p99: float
    encode_p50: float
    asks: int
    # CPU time of the process during each call (asks are sequential, so that is the call's own):
    # what the wall time would be on an otherwise idle machine, since a query runs on one thread.
    ask_cpu_p50: float = 0.0
    ask_cpu_p99: float = 0.0
    encode_cpu_p50: float = 0.0

    @property
    def ratio(self) -> float:
        return self.ask_p50 / self.encode_p50 if self.encode_p50 else float("inf")


def measure(kb: KnowledgeBase, questions: list[str], rounds: int = 3, warmup: int = 10) -> Latency:
    """Time `ask` and a bare `encode_query` on the same questions, interleaved so load hits both alike."""
    encoder = kb._get_encoder()
    for question in questions[:warmup]:
        kb.ask(question)
        encoder.encode_query(question)
    asks: list[tuple[float, float]] = []
    encodes: list[tuple[float, float]] = []
    for _ in range(rounds):
        for question in questions:
            encodes.append(_timed(encoder.encode_query, question))
            asks.append(_timed(kb.ask, question))
    ask_ms = np.array(asks) * 1000
    encode_ms = np.array(encodes) * 1000
    return Latency(
        float(np.percentile(ask_ms[:, 0], 50)),
        float(np.percentile(ask_ms[:, 0], 99)),
        float(np.percentile(encode_ms[:, 0], 50)),
        len(asks),
        float(np.percentile(ask_ms[:, 1], 50)),
        float(np.percentile(ask_ms[:, 1], 99)),
        float(np.percentile(encode_ms[:, 1], 50)),
    )


def _timed(call, argument) -> tuple[float, float]:
    """(wall seconds, the process's CPU seconds) of one call: the encoder's forward pass runs on its
    batching thread, so the asking thread's own CPU time would leave it out."""
    wall, cpu = time.perf_counter(), time.process_time()
    call(argument)
    return time.perf_counter() - wall, time.process_time() - cpu
