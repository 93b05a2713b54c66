"""The model registry: candidates, atomic promotion, rollback, and clean-up after a killed run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from generation.models.checkpoint import save_checkpoint
from generation.models.gan import GanConfig, Generator
from generation.registry import ModelRegistry, RegistryError

CONFIG = GanConfig(image_size=8, z_dim=4, g_channels=8)


def add_version(registry: ModelRegistry, fid: float) -> str:
    version, folder = registry.new_candidate("gan")
    save_checkpoint(folder, "gan", Generator(CONFIG), CONFIG.to_dict(), metadata={"version": version})
    registry.commit_candidate("gan", version, {"fd_ratio": fid})
    return version


def test_promote_and_rollback(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    assert registry.champion("gan") is None
    first, second, third = (add_version(registry, value) for value in (3.0, 2.0, 1.0))
    assert [info.status for info in registry.versions("gan")] == ["candidate"] * 3
    registry.promote("gan", first)
    registry.promote("gan", second)
    registry.promote("gan", third)
    listing = {info.version: info for info in registry.versions("gan")}
    assert [info.version for info in registry.versions("gan")] == [third, second, first]  # newest first
    assert listing[third].status == "champion" and listing[third].metrics == {"fd_ratio": 1.0}
    assert listing[second].status == "previous"
    assert registry.rollback("gan").version == second
    assert registry.champion("gan").version == second
    assert registry.rollback("gan").version == first
    with pytest.raises(RegistryError, match="no previous"):
        registry.rollback("gan")
    assert registry.rollback("gan", third).version == third
    with pytest.raises(RegistryError, match="no gan version"):
        registry.promote("gan", "nope")
    assert not list((tmp_path / "gan").glob("*.tmp"))


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="unknown model kind"):
        ModelRegistry(tmp_path).versions("diffusion")  # type: ignore[arg-type]


def test_killed_run_leaves_champion_and_is_cleaned_up(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    champion = add_version(registry, 1.0)
    registry.promote("gan", champion)
    # A trainer killed mid-write: its partial folder names a process that no longer exists.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    version, partial = registry.new_candidate("gan")
    (partial / ".owner").write_text(dead.stdout.strip(), encoding="utf-8")
    (partial / "model.safetensors").write_bytes(b"half a file")
    live_version, live = registry.new_candidate("gan")  # this process is alive: its folder stays
    assert [info.version for info in registry.versions("gan")] == [champion]
    assert registry.champion("gan").version == champion
    removed = registry.cleanup_partial("gan")
    assert removed == [partial] and not partial.exists() and live.exists()
    assert live_version != version
    assert int((live / ".owner").read_text()) == os.getpid()


def test_commit_refuses_unfinished_candidate(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    version, _ = registry.new_candidate("gan")
    with pytest.raises(ValueError, match=r"no meta\.json"):
        registry.commit_candidate("gan", version)
    assert registry.versions("gan") == []


def _ship(folder: Path, version: str) -> Path:
    """A shipped default: a checkpoint folder of its own, outside any registry."""
    save_checkpoint(folder / "gan", "gan", Generator(CONFIG), CONFIG.to_dict(), metadata={"version": version})
    return folder


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")}


def test_shipped_default_is_the_first_champion_and_rollback_returns_to_it(tmp_path: Path) -> None:
    shipped = _ship(tmp_path / "package", "20260101T000000.000000Z-ship")
    before = _snapshot(shipped)
    registry = ModelRegistry(tmp_path / "models", shipped)
    champion = registry.champion("gan")
    assert champion is not None and champion.version == "20260101T000000.000000Z-ship"
    assert champion.path == shipped / "gan" and champion.note == "shipped with the package"
    with pytest.raises(RegistryError, match="no previous"):
        registry.rollback("gan")
    trained = add_version(registry, 1.0)
    assert [info.status for info in registry.versions("gan")] == ["candidate", "champion"]
    registry.promote("gan", trained)
    assert registry.champion("gan").version == trained
    assert [info.status for info in registry.versions("gan")] == ["champion", "previous"]
    assert registry.rollback("gan").version == "20260101T000000.000000Z-ship"
    assert registry.champion("gan").path == shipped / "gan"
    assert registry.rollback("gan", trained).version == trained
    assert _snapshot(shipped) == before  # read in place, never written
    assert not (tmp_path / "models" / "gan" / "versions" / "20260101T000000.000000Z-ship").exists()


def test_without_a_shipped_default_there_is_no_champion(tmp_path: Path) -> None:
    assert ModelRegistry(tmp_path / "models", tmp_path / "empty").champion("gan") is None
    assert ModelRegistry(tmp_path / "models", None).versions("gan") == []
