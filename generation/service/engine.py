"""GenerationEngine: the loaded champions plus one micro-batcher per model kind.

The HTTP service serves this one object, and the in-process GenerationClient calls it directly (it
has the same async methods as the client's HTTP backend), so loading, warm-up, batching, deadlines
and hot reload behave the same whether the bot talks HTTP or not.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from generation.api import (
    MODEL_KINDS,
    MODEL_OUTPUTS,
    GeneratorUnavailable,
    ImageRequest,
    ImageResult,
    InvalidRequest,
    ModelInfo,
    ModelKind,
    ModelVersion,
    TextRequest,
    TextResult,
)
from generation.service.batching import BatchLimits, MicroBatcher
from generation.settings import GenerationSettings

logger = logging.getLogger(__name__)


class Generator(Protocol):
    """What generation.service.inference's ImageGenerator and TextGenerator offer."""

    version: str
    metrics: dict[str, float]
    created_at: str

    def generate_batch(self, requests: list[Any]) -> Sequence[Any]: ...

    def warm_up(self) -> None: ...


ChampionLoader = Callable[[Path, ModelKind, str], Generator | None]
ChampionVersion = Callable[[Path, ModelKind], str | None]


def resolve_device(requested: str, threads: int = 0) -> str:
    """`auto` means CUDA when present (then MPS), else CPU, as for the trainer; `threads` > 0 caps
    torch's CPU threads (GENERATION_THREADS)."""
    import torch  # only here: HTTP-mode clients never load it

    from generation.models.device import resolve_device as pick

    if threads > 0:
        torch.set_num_threads(threads)
    return str(pick(requested))


def load_champion_from_registry(
    models_dir: Path, kind: ModelKind, device: str, shipped_dir: Path | None = None
) -> Generator | None:
    """The production loader: the registry's current champion, through the shared checkpoint loader."""
    from generation.service.inference import load_champion

    return load_champion(models_dir, kind, device=device, shipped_dir=shipped_dir)


def champion_version_in_registry(
    models_dir: Path, kind: ModelKind, shipped_dir: Path | None = None
) -> str | None:
    """The registry's champion version, read without loading weights."""
    from generation.registry import ModelRegistry

    champion = ModelRegistry(models_dir, shipped_dir).champion(kind)
    return champion.version if champion is not None else None


class GenerationEngine:
    """Serves the current champions of each kind through micro-batchers; hot-swaps on reload()."""

    def __init__(
        self,
        models_dir: Path,
        *,
        shipped_dir: Path | None = None,
        device: str = "auto",
        limits: BatchLimits | None = None,
        timeout_s: float = 20.0,
        loader: ChampionLoader | None = None,
        champion_version: ChampionVersion | None = None,
        threads: int = 0,
    ) -> None:
        self.models_dir = Path(models_dir)
        self.requested_device = device
        self.device: str | None = None
        self.timeout_s = timeout_s
        self.threads = threads
        # With a custom loader and no version probe, every reload loads afresh.
        self.shipped_dir = shipped_dir
        self._loader = loader or functools.partial(load_champion_from_registry, shipped_dir=shipped_dir)
        self._champion_version = champion_version or (
            None if loader else functools.partial(champion_version_in_registry, shipped_dir=shipped_dir)
        )
        self._generators: dict[ModelKind, Generator] = {}
        self._batchers: dict[ModelKind, MicroBatcher[Any, Any]] = {
            kind: MicroBatcher(kind, self._batch_runner(kind), limits) for kind in MODEL_KINDS
        }
        self._reload_lock = asyncio.Lock()
        self.started = False

    @classmethod
    def from_settings(cls, settings: GenerationSettings) -> GenerationEngine:
        """An engine configured from GENERATION_* settings."""
        limits = BatchLimits(
            max_batch_size=settings.generation_max_batch,
            max_wait_s=settings.generation_max_wait_ms / 1000,
            max_queue=settings.generation_max_queue,
        )
        return cls(
            settings.models_dir,
            shipped_dir=settings.shipped_dir,
            device=settings.generation_device,
            limits=limits,
            timeout_s=settings.generation_timeout_s,
            threads=settings.generation_threads,
        )

    async def start(self) -> None:
        """Pick the device, load and warm up the champions (off the event loop), start batching."""
        if self.started:
            return
        self.device = await asyncio.to_thread(resolve_device, self.requested_device, self.threads)
        for batcher in self._batchers.values():
            await batcher.start()
        await self._load_champions()
        self.started = True
        logger.info("generation engine ready on %s: %s", self.device, self.describe_models())

    async def stop(self) -> None:
        """Finish queued and running requests (bounded), then stop the worker threads."""
        self.started = False
        for batcher in self._batchers.values():
            await batcher.stop()

    @property
    def ready(self) -> bool:
        """Started and serving at least one model."""
        return self.available_for(None)

    def available_for(self, kind: ModelKind | None) -> bool:
        """Started and serving a champion of `kind` (None: of any kind)."""
        if not self.started:
            return False
        return bool(self._generators) if kind is None else kind in self._generators

    def _require_started(self) -> None:
        if not self.started:
            raise GeneratorUnavailable("the generators are not started")

    async def image(self, request: ImageRequest, timeout_s: float | None = None) -> ImageResult:
        """One image request, batched with concurrent ones for the same image model."""
        return await self._submit(request.model, request, timeout_s)

    async def text(self, request: TextRequest, timeout_s: float | None = None) -> TextResult:
        """One text request, batched with concurrent ones for the same text model."""
        return await self._submit(request.model, request, timeout_s)

    async def _submit(self, kind: ModelKind, request: Any, timeout_s: float | None) -> Any:
        self._require_started()
        if kind not in self._generators:
            raise GeneratorUnavailable(f"no {MODEL_OUTPUTS[kind]} model is loaded yet (train one: {kind})")
        budget = self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)
        return await self._batchers[kind].submit(request, budget)

    async def models(self) -> list[ModelInfo]:
        """The champion serving each kind (version None where none is loaded, or before start)."""
        return self._model_infos()

    def _model_infos(self) -> list[ModelInfo]:
        infos = []
        for kind in MODEL_KINDS:
            generator = self._generators.get(kind)
            if generator is None:
                infos.append(ModelInfo(kind=kind, version=None))
            else:
                infos.append(
                    ModelInfo(
                        kind=kind,
                        version=generator.version,
                        metrics=dict(generator.metrics),
                        created_at=generator.created_at,
                    )
                )
        return infos

    async def versions(self, kind: ModelKind) -> list[ModelVersion]:
        """The registry's versions of `kind`, newest first (read off the event loop)."""
        from generation.registry import ModelRegistry, RegistryError

        self._require_started()
        try:
            infos = await asyncio.to_thread(ModelRegistry(self.models_dir, self.shipped_dir).versions, kind)
        except RegistryError as exc:
            raise InvalidRequest(str(exc)) from None
        return [_model_version(info) for info in infos]

    async def rollback(self, kind: ModelKind, version: str | None = None) -> ModelVersion:
        """Make `version` (default: the previous champion) champion again, then hot-swap it in as
        reload() does; InvalidRequest when there is no such version."""
        from generation.registry import ModelRegistry, RegistryError

        self._require_started()
        try:
            info = await asyncio.to_thread(
                ModelRegistry(self.models_dir, self.shipped_dir).rollback, kind, version
            )
        except RegistryError as exc:
            raise InvalidRequest(str(exc)) from None
        await self.reload()
        if self._version(kind) != info.version:
            raise GeneratorUnavailable(
                f"{kind} {info.version} is champion again but could not be loaded; still serving "
                f"{self._version(kind) or 'nothing'}"
            )
        return _model_version(info)

    def describe_models(self) -> str:
        """`gan=v3 lstm=none`, for logs."""
        return " ".join(f"{info.kind}={info.version or 'none'}" for info in self._model_infos())

    def batching_stats(self) -> dict[str, dict[str, Any]]:
        """Per-kind batch counters, plus the current queue depth."""
        return {
            kind: {**batcher.stats.as_dict(), "queued": batcher.queued}
            for kind, batcher in self._batchers.items()
        }

    async def reload(self) -> list[ModelInfo]:
        """Load and warm up each kind's current champion, then swap it in between batches.

        Requests already in a batch finish on the old model; queued ones run on the new one, so no
        request is dropped. A champion that fails to load leaves the old model serving.
        """
        self._require_started()
        return await self._load_champions()

    async def _load_champions(self) -> list[ModelInfo]:
        async with self._reload_lock:
            device = self.device
            assert device is not None  # start() picks the device before the first load
            for kind in MODEL_KINDS:
                if kind in self._generators and await self._unchanged(kind):
                    continue
                try:
                    fresh = await asyncio.to_thread(self._load_and_warm_up, kind, device)
                except Exception:
                    logger.exception("could not load the %s champion; keeping %s", kind, self._version(kind))
                    continue
                if fresh is None:
                    if kind in self._generators:
                        logger.warning(
                            "no %s champion on disk any more; keeping %s", kind, self._version(kind)
                        )
                    continue
                if fresh.version != self._version(kind):
                    logger.info("%s: serving %s (was %s)", kind, fresh.version, self._version(kind))
                self._generators[kind] = fresh  # one reference swap; the next batch picks it up
            return self._model_infos()

    async def _unchanged(self, kind: ModelKind) -> bool:
        """Whether the champion on disk is the one already serving (then there is nothing to load)."""
        if self._champion_version is None:
            return False
        try:
            on_disk = await asyncio.to_thread(self._champion_version, self.models_dir, kind)
        except Exception:
            logger.exception("could not read the %s champion's version", kind)
            return False
        return on_disk is not None and on_disk == self._version(kind)

    def _version(self, kind: ModelKind) -> str | None:
        generator = self._generators.get(kind)
        return generator.version if generator is not None else None

    def _load_and_warm_up(self, kind: ModelKind, device: str) -> Generator | None:
        generator = self._loader(self.models_dir, kind, device)
        if generator is not None:
            generator.warm_up()
        return generator

    def _batch_runner(self, kind: ModelKind) -> Callable[[list[Any]], Sequence[Any]]:
        def run(requests: list[Any]) -> Sequence[Any]:
            generator = self._generators.get(kind)  # read once per batch: a swap never splits a batch
            if generator is None:
                raise GeneratorUnavailable(f"no {MODEL_OUTPUTS[kind]} model is loaded")
            return generator.generate_batch(requests)

        return run


def _model_version(info: Any) -> ModelVersion:
    """A registry VersionInfo as the API's ModelVersion."""
    return ModelVersion(
        kind=info.kind,
        version=info.version,
        status=info.status,
        created_at=info.created_at or None,
        metrics=dict(info.metrics),
        note=info.note,
    )
