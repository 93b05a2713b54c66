"""Versioned models on disk: candidates, the champion, and the history kept for rollback.

Layout under `models_dir` (DATA_DIR/models):

    {kind}/versions/{version}/model.safetensors + meta.json   one folder per committed version
    {kind}/.partial-{version}/                                 a version still being written
    {kind}/state.json                                          champion, champion history, verdicts

A version folder appears only by an atomic rename of a finished partial folder, and `state.json`
changes only by writing a temporary file and `os.replace`, so a run killed at any point leaves
the champion untouched and no half-written folder where readers look.

A shipped default champion of each kind (`shipped_dir/{kind}/`; the package's own are made by `make
models`) is listed as one more version, read in place and never written: it is the champion until a
trained version is promoted, and rollback can return to it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from generation.api import MODEL_KINDS, ModelKind
from generation.models.checkpoint import CheckpointError, read_metadata, write_metadata

SHIPPED_NOTE = "shipped with the package"
PARTIAL_PREFIX = ".partial-"
OWNER_FILE = ".owner"
Status = Literal["champion", "previous", "candidate", "rejected"]


class RegistryError(ValueError):
    """An unknown version, or nothing to roll back to; the message says which."""


@dataclass
class VersionInfo:
    """One committed version as listed by `/models`."""

    kind: str
    version: str
    path: Path
    status: Status
    created_at: str
    metrics: dict[str, float] = field(default_factory=dict)
    note: str = ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ModelRegistry:
    """Versions of each generator kind under one models folder."""

    def __init__(self, models_dir: Path, shipped_dir: Path | None = None) -> None:
        self.models_dir = Path(models_dir)
        self.shipped_dir = None if shipped_dir is None else Path(shipped_dir)
        self._shipped: dict[str, str | None] = {}

    # -- paths and state -------------------------------------------------------------------------
    def _kind_dir(self, kind: str) -> Path:
        if kind not in MODEL_KINDS:
            raise RegistryError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
        return self.models_dir / kind

    def shipped_version(self, kind: str) -> str | None:
        """The version id of the default champion the package ships for `kind`, if any."""
        self._kind_dir(kind)
        if self.shipped_dir is None:
            return None
        if kind not in self._shipped:
            try:
                self._shipped[kind] = str(read_metadata(self.shipped_dir / kind)["version"])
            except (CheckpointError, KeyError):
                self._shipped[kind] = None
        return self._shipped[kind]

    def version_dir(self, kind: str, version: str) -> Path:
        if self.shipped_dir is not None and version == self.shipped_version(kind):
            return self.shipped_dir / kind  # read in place, never written
        return self._kind_dir(kind) / "versions" / version

    def _champion_version(self, kind: str, state: dict[str, Any]) -> str | None:
        """The promoted champion, or the shipped default while none has been promoted."""
        return state.get("champion") or self.shipped_version(kind)

    def _read_state(self, kind: str) -> dict[str, Any]:
        path = self._kind_dir(kind) / "state.json"
        if not path.exists():
            return {"champion": None, "history": [], "verdicts": {}}
        return json.loads(path.read_text(encoding="utf-8"))

    def _write_state(self, kind: str, state: dict[str, Any]) -> None:
        directory = self._kind_dir(kind)
        directory.mkdir(parents=True, exist_ok=True)
        temp = directory / f"state.json.{os.getpid()}.tmp"
        try:
            with temp.open("w", encoding="utf-8") as handle:
                json.dump(state, handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, directory / "state.json")
        except BaseException:  # a full disk: the old state.json stays whole and in force
            temp.unlink(missing_ok=True)
            raise

    # -- writing versions ------------------------------------------------------------------------
    def new_candidate(self, kind: ModelKind) -> tuple[str, Path]:
        """A fresh version id and a private folder to write the checkpoint into."""
        # Ids sort by creation time to the microsecond (two runs in one millisecond happen in tests),
        # then a random tail keeps concurrent trainers apart.
        version = f"{datetime.now(UTC):%Y%m%dT%H%M%S.%f}Z-{secrets.token_hex(2)}"
        partial = self._kind_dir(kind) / f"{PARTIAL_PREFIX}{version}"
        partial.mkdir(parents=True)
        (partial / OWNER_FILE).write_text(str(os.getpid()), encoding="utf-8")
        return version, partial

    def commit_candidate(
        self, kind: ModelKind, version: str, metrics: dict[str, float] | None = None
    ) -> VersionInfo:
        """Record metrics in the finished partial folder, then atomically rename it into `versions/`."""
        partial = self._kind_dir(kind) / f"{PARTIAL_PREFIX}{version}"
        if not partial.is_dir():
            raise RegistryError(f"no partial candidate {version} for {kind}")
        meta = read_metadata(partial)  # refuses a folder without finished metadata
        if metrics is not None:
            meta["metrics"] = {key: float(value) for key, value in metrics.items()}
            write_metadata(partial, meta)
        (partial / OWNER_FILE).unlink(missing_ok=True)
        target = self.version_dir(kind, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, target)
        return self._info(kind, version, self._read_state(kind))

    def reject(self, kind: ModelKind, version: str, reason: str) -> None:
        """Keep a committed candidate listed, marked as not promoted and why."""
        self._require(kind, version)
        state = self._read_state(kind)
        state.setdefault("verdicts", {})[version] = reason
        self._write_state(kind, state)

    # -- reading ---------------------------------------------------------------------------------
    def _require(self, kind: str, version: str) -> Path:
        path = self.version_dir(kind, version)
        if not (path / "meta.json").is_file():
            raise RegistryError(f"no {kind} version {version!r}")
        return path

    def _info(self, kind: str, version: str, state: dict[str, Any]) -> VersionInfo:
        path = self.version_dir(kind, version)
        try:
            meta = read_metadata(path)
        except CheckpointError:
            meta = {}
        verdicts = state.get("verdicts", {})
        if version == self._champion_version(kind, state):
            status: Status = "champion"
        elif version in state.get("history", []):
            status = "previous"
        elif version in verdicts:
            status = "rejected"
        else:
            status = "candidate"
        return VersionInfo(
            kind=kind,
            version=version,
            path=path,
            status=status,
            created_at=str(meta.get("created_at", "")),
            metrics={key: float(value) for key, value in meta.get("metrics", {}).items()},
            note=verdicts.get(version) or (SHIPPED_NOTE if version == self.shipped_version(kind) else ""),
        )

    def versions(self, kind: ModelKind) -> list[VersionInfo]:
        """Committed versions, newest first."""
        root = self._kind_dir(kind) / "versions"
        names = (
            {path.name for path in root.iterdir() if (path / "meta.json").is_file()}
            if root.is_dir()
            else set()
        )
        shipped = self.shipped_version(kind)
        if shipped is not None:
            names.add(shipped)
        state = self._read_state(kind)
        return [self._info(kind, name, state) for name in sorted(names, reverse=True)]

    def champion(self, kind: ModelKind) -> VersionInfo | None:
        state = self._read_state(kind)
        version = self._champion_version(kind, state)
        if not version or not (self.version_dir(kind, version) / "meta.json").is_file():
            return None
        return self._info(kind, version, state)

    # -- changing the champion -------------------------------------------------------------------
    def promote(self, kind: ModelKind, version: str) -> None:
        """Make `version` the champion (one atomic state swap); the old champion goes into history."""
        self._require(kind, version)
        state = self._read_state(kind)
        previous = self._champion_version(kind, state)
        if previous == version:
            return
        history = [item for item in state.get("history", []) if item != version]
        if previous:
            history.append(previous)
        state.update(champion=version, history=history)
        state.get("verdicts", {}).pop(version, None)
        self._write_state(kind, state)

    def rollback(self, kind: ModelKind, version: str | None = None) -> VersionInfo:
        """Go back to `version`, or to the previous champion when None; returns the new champion."""
        state = self._read_state(kind)
        if version is None:
            history = [
                item
                for item in state.get("history", [])
                if (self.version_dir(kind, item) / "meta.json").is_file()
            ]
            if not history:
                raise RegistryError(f"no previous {kind} champion to roll back to")
            version = history[-1]
        self._require(kind, version)
        current = self._champion_version(kind, state)
        history = [item for item in state.get("history", []) if item not in (version, current)]
        if current and current != version:
            state.setdefault("verdicts", {})[current] = f"rolled back to {version}"
        state.update(champion=version, history=history)
        state.get("verdicts", {}).pop(version, None)
        self._write_state(kind, state)
        return self._info(kind, version, state)

    def cleanup_partial(self, kind: ModelKind) -> list[Path]:
        """Remove folders of runs that died before committing (a live run's folder is left alone)."""
        removed: list[Path] = []
        directory = self._kind_dir(kind)
        if not directory.is_dir():
            return removed
        for path in sorted(directory.glob(f"{PARTIAL_PREFIX}*")):
            try:
                owner = int((path / OWNER_FILE).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                owner = None
            if owner is not None and _pid_alive(owner):
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
        for temp in directory.glob("state.json.*.tmp"):
            pid = temp.name.split(".")[2]
            if pid.isdigit() and not _pid_alive(int(pid)):
                temp.unlink(missing_ok=True)
                removed.append(temp)
        return removed
