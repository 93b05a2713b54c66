"""Helpers for the service and client tests: stand-in generators and a real uvicorn on loopback.

The stand-ins have generation.service.inference's interface (version, metrics, created_at,
generate_batch, warm_up) and cost real time per batch, so batching, deadlines and reloads are
exercised for real; the tests that need real models use dry-run checkpoints instead.
"""

from __future__ import annotations

import io
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from PIL import Image

from generation.api import ImageRequest, ImageResult, ModelKind, TextRequest, TextResult
from generation.service.app import create_app
from generation.service.batching import BatchLimits
from generation.service.engine import GenerationEngine
from generation.service.jobs import TrainingJobs
from generation.settings import GenerationSettings

POISON_SEED = 666  # an image request with this seed makes the stand-in raise
POISON_PROMPT = "poison"  # likewise for text


class FakeGenerator:
    """A stand-in model: each batch costs `batch_s` + `item_s` per request; records batch sizes."""

    def __init__(self, kind: ModelKind, version: str, batch_s: float = 0.02, item_s: float = 0.001) -> None:
        self.kind, self.version = kind, version
        self.metrics = {"quality": 1.0}
        self.created_at = "2026-01-01T00:00:00Z"
        self.batch_s, self.item_s = batch_s, item_s
        self.batch_sizes: list[int] = []
        self.warmed_up = False

    def warm_up(self) -> None:
        self.warmed_up = True

    def generate_batch(self, requests: list) -> list:
        time.sleep(self.batch_s + self.item_s * len(requests))
        self.batch_sizes.append(len(requests))
        return [self._one(request) for request in requests]

    def _one(self, request: ImageRequest | TextRequest) -> ImageResult | TextResult:
        seed = request.seed if request.seed is not None else random.randrange(2**31)
        if isinstance(request, ImageRequest):
            if seed == POISON_SEED:
                raise ValueError("poisoned image request")
            pixels = random.Random(seed).randbytes(16 * 16)
            buffer = io.BytesIO()
            Image.frombytes("L", (16, 16), pixels).save(buffer, format="PNG")
            digits = [request.digit] * request.count
            return ImageResult(png=buffer.getvalue(), model_version=self.version, seed=seed, digits=digits)
        if POISON_PROMPT in request.prompt:
            raise ValueError("poisoned text request")
        rng = random.Random(seed)
        text = request.prompt + "".join(rng.choice("abc ") for _ in range(request.length))
        return TextResult(text=text, model_version=self.version, seed=seed)


@dataclass
class FakeModelStore:
    """What is 'on disk': the champion version of each kind; the loader builds fresh generators from it."""

    champions: dict[str, str | None] = field(default_factory=lambda: {"gan": "gan-v1", "lstm": "lstm-v1"})
    batch_s: float = 0.02
    loaded: list[FakeGenerator] = field(default_factory=list)
    fail_loading: bool = False

    def load(self, models_dir: Path, kind: ModelKind, device: str) -> FakeGenerator | None:
        if self.fail_loading:
            raise RuntimeError("corrupt checkpoint")
        version = self.champions.get(kind)
        if version is None:
            return None
        generator = FakeGenerator(kind, version, batch_s=self.batch_s)
        self.loaded.append(generator)
        return generator

    def batch_sizes(self, kind: ModelKind) -> list[int]:
        return [size for generator in self.loaded if generator.kind == kind for size in generator.batch_sizes]


def fake_engine(
    store: FakeModelStore,
    tmp_path: Path,
    *,
    max_batch: int = 32,
    max_wait_s: float = 0.005,
    timeout_s: float = 10.0,
) -> GenerationEngine:
    """An engine over stand-in generators, on the CPU."""
    limits = BatchLimits(max_batch_size=max_batch, max_wait_s=max_wait_s)
    return GenerationEngine(
        tmp_path,
        device="cpu",
        limits=limits,
        timeout_s=timeout_s,
        loader=store.load,
        champion_version=lambda models_dir, kind: store.champions.get(kind),
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServiceThread:
    """The real FastAPI app on a real uvicorn, on a loopback port, in a background thread.

    `engine=None` builds the production engine from settings (real checkpoints under DATA_DIR), and
    `jobs=None` the production training jobs (the real trainer, recorded under DATA_DIR/jobs).
    """

    def __init__(
        self,
        settings: GenerationSettings,
        engine: GenerationEngine | None,
        port: int | None = None,
        jobs: TrainingJobs | None = None,
    ) -> None:
        self.settings, self.engine, self.jobs = settings, engine, jobs
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 10.0) -> ServiceThread:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(
            create_app(self.settings, self.engine, self.jobs),
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the service did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RuntimeError("the service did not stop")
        self._server = self._thread = None

    def __enter__(self) -> ServiceThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
