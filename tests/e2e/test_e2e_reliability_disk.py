"""The disk under DATA_DIR full while an index or a checkpoint is written (ENOSPC injected in the write
path, after part of the file was written: no small real filesystem can be mounted here), and files
that are pickles where weights or index arrays belong. Nothing half-written is ever put in use, and
nothing is unpickled."""

from __future__ import annotations

import errno
import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "knowledge"))

from generation.models import checkpoint  # noqa: E402
from generation.models.checkpoint import CheckpointError, build_model, load_checkpoint, save_checkpoint  # noqa: E402
from generation.registry import ModelRegistry  # noqa: E402

GAN_CONFIG = {"image_size": 8, "z_dim": 8, "num_classes": 10, "g_channels": 8, "d_channels": 8}


def disk_full_after(limit: int):
    """An open() for writing that accepts `limit` bytes, then fails as a full disk does."""
    real_open = open

    class FullFile:
        def __init__(self, handle) -> None:
            self._handle = handle
            self.written = 0

        def write(self, data) -> int:
            room = limit - self.written
            if len(data) > room:
                self._handle.write(data[: max(room, 0)])
                self.written = limit
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(data)
            return self._handle.write(data)

        def __getattr__(self, name: str):
            return getattr(self._handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc: object) -> None:
            self._handle.close()

    def fake_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        return FullFile(handle) if any(flag in mode for flag in "wax") else handle

    return fake_open


def champion_and_candidate(tmp_path: Path) -> tuple[ModelRegistry, str]:
    registry = ModelRegistry(tmp_path / "models")
    version, partial = registry.new_candidate("gan")
    save_checkpoint(partial, "gan", build_model("gan", GAN_CONFIG), GAN_CONFIG)
    registry.commit_candidate("gan", version, {"fid": 10.0})
    registry.promote("gan", version)
    return registry, version


def test_disk_full_during_a_checkpoint_write_leaves_the_champion_in_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, champion = champion_and_candidate(tmp_path)
    version, partial = registry.new_candidate("gan")

    def save_file_on_full_disk(tensors, filename, metadata=None) -> None:
        with open(filename, "wb") as handle:  # part of the weights, then no room
            handle.write(b"\x00" * 100)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", save_file_on_full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(partial, "gan", build_model("gan", GAN_CONFIG), GAN_CONFIG)
    # Nothing half-written, under its real name or a temporary one; the candidate cannot be committed.
    left = {path.name for path in partial.iterdir()}
    assert not left & {"model.safetensors", "meta.json", "model.safetensors.tmp", "meta.json.tmp"}, left
    with pytest.raises(CheckpointError):
        registry.commit_candidate("gan", version)
    assert registry.champion("gan").version == champion
    load_checkpoint(registry.champion("gan").path, "gan")  # still loads and checks out


def test_disk_full_while_promoting_keeps_the_old_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, champion = champion_and_candidate(tmp_path)
    version, partial = registry.new_candidate("gan")
    save_checkpoint(partial, "gan", build_model("gan", GAN_CONFIG), GAN_CONFIG)
    registry.commit_candidate("gan", version)
    full_disk_open = disk_full_after(10)
    monkeypatch.setattr(
        Path, "open", lambda self, mode="r", *args, **kwargs: full_disk_open(self, mode, *args, **kwargs)
    )
    with pytest.raises(OSError, match="No space left"):
        registry.promote("gan", version)
    monkeypatch.undo()
    assert registry.champion("gan").version == champion
    assert not list((tmp_path / "models" / "gan").glob("state.json.*.tmp"))


def test_pickled_weights_are_refused_without_being_unpickled(tmp_path: Path) -> None:
    registry, _ = champion_and_candidate(tmp_path)
    folder = registry.champion("gan").path
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"weights": Payload()}, folder / "model.safetensors.pickle")
    (folder / "model.safetensors.pickle").replace(folder / "model.safetensors")
    # Even with the hash in the metadata updated to match, the file is refused as not safetensors.
    meta = checkpoint.read_metadata(folder)
    meta["weights_sha256"] = checkpoint._sha256(folder / "model.safetensors")
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_checkpoint(folder, "gan")
    assert not marker.exists()


def test_disk_full_during_an_index_build_keeps_the_live_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import faiss
    from knowledge_doubles import FakeEncoder, no_similarity

    import knowledge.index as index_module
    from knowledge.build import build_index
    from knowledge.index import load, save

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "guide.md").write_text(
        "# Guide\n\n## 1. Pricing\n\nCharge per seat.\n\n## 2. Hiring\n\nHire builders.\n", encoding="utf-8"
    )
    root = tmp_path / "index"
    first, _ = build_index(corpus, FakeEncoder(), "fp1", similarity=no_similarity)
    save(first, root)
    second, _ = build_index(corpus, FakeEncoder(), "fp2", similarity=no_similarity)
    real_write_index = faiss.write_index

    def write_index_on_full_disk(index, path: str) -> None:
        real_write_index(index, path)
        Path(path).write_bytes(Path(path).read_bytes()[:64])  # the disk filled up mid-file
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(index_module.faiss, "write_index", write_index_on_full_disk)
    with pytest.raises(OSError, match="No space left"):
        save(second, root)
    monkeypatch.undo()
    assert load(root).fingerprint == "fp1"
    assert sorted(path.name for path in root.iterdir() if path.name.startswith(".")) == []


def test_no_pickle_loading_anywhere_in_the_code() -> None:
    """Grep-level: nothing that unpickles is used to read checkpoints, indexes or anything else."""
    risky = ("pickle.load", "torch.load", "allow_pickle=True", "joblib", "dill", "cloudpickle", "np.load(")
    offenders = []
    for package in ("bot", "knowledge", "generation"):
        for path in (ROOT / package).rglob("*.py"):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                for word in risky:
                    if word in code and not (word == "np.load(" and "allow_pickle=False" in code):
                        offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
