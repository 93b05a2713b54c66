"""Training recipe for the character LSTM."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from generation.data import TextCorpus
from generation.models.lstm import CharLSTM, LstmConfig
from generation.models.vocab import CharVocab
from generation.train.progress import ProgressReporter

SEPARATOR = "\n\n"


@dataclass
class LstmRecipe:
    """Hyperparameters; the defaults are the CPU recipe (a few minutes on 2 cores)."""

    epochs: int = 40
    batch_size: int = 32
    seq_len: int = 64
    embed_dim: int = 128
    hidden_size: int = 256  # wider gains little per step and loses many steps on 2 busy cores
    layers: int = 2
    dropout: float = 0.35  # tied embeddings memorise this small corpus fast: strong dropout pays
    tie_embeddings: bool = True
    lr: float = 4e-3
    weight_decay: float = 0.01
    clip: float = 1.0
    min_char_count: int = 2
    cpu_bf16: bool = True
    max_steps: int | None = None  # stop early (tests, quick checks)
    time_limit_s: float | None = 280.0  # a safety cap: the whole default run stays under 5 minutes

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def dry_run(cls) -> LstmRecipe:
        return cls(epochs=1, batch_size=4, seq_len=32, embed_dim=16, hidden_size=32, layers=1, max_steps=8)

    @classmethod
    def for_cuda(cls) -> LstmRecipe:
        return cls(batch_size=128, hidden_size=512, time_limit_s=None)


def training_stream(corpus: TextCorpus, vocab: CharVocab) -> torch.Tensor:
    return torch.tensor(vocab.encode(SEPARATOR.join(corpus.train)), dtype=torch.long)


def train_lstm(
    recipe: LstmRecipe, corpus: TextCorpus, device: torch.device, reporter_factory, seed: int
) -> tuple[CharLSTM, CharVocab, dict]:
    """Truncated back-propagation over `batch_size` parallel streams, carrying state across windows."""
    torch.manual_seed(seed)
    vocab = CharVocab.build(corpus.train, min_count=recipe.min_char_count)
    config = LstmConfig(
        len(vocab), recipe.embed_dim, recipe.hidden_size, recipe.layers, recipe.dropout, recipe.tie_embeddings
    )
    model = CharLSTM(config).to(device)
    ids = training_stream(corpus, vocab)
    per_stream = (len(ids) - 1) // recipe.batch_size
    windows = max(1, per_stream // recipe.seq_len)
    inputs = ids[: per_stream * recipe.batch_size].view(recipe.batch_size, per_stream)
    targets = ids[1 : per_stream * recipe.batch_size + 1].view(recipe.batch_size, per_stream)
    total = recipe.epochs * windows
    if recipe.max_steps is not None:
        total = min(total, recipe.max_steps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    # bf16 autocast: on CUDA, and on CPUs with native bf16 (AVX512-BF16/AMX), where it is ~1.6x faster.
    use_amp = device.type == "cuda" or (
        device.type == "cpu" and recipe.cpu_bf16 and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    )
    loss_fn = nn.CrossEntropyLoss()
    reporter: ProgressReporter = reporter_factory(total)
    cpu_started, started, step, stopped_early, loss_value = (
        time.process_time(),
        time.perf_counter(),
        0,
        False,
        float("nan"),
    )
    model.train()
    while step < total:
        state = None
        offset = int(torch.randint(0, recipe.seq_len, (1,)))  # shift window borders between epochs
        for window in range(windows):
            start = offset + window * recipe.seq_len
            end = min(start + recipe.seq_len, per_stream)
            if end - start < 2:
                break
            x, y = inputs[:, start:end].to(device), targets[:, start:end].to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                logits, state = model(x, state)
                loss = loss_fn(logits.float().reshape(-1, config.vocab_size), y.reshape(-1))
            state = (state[0].detach(), state[1].detach())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), recipe.clip)
            # Cosine decay over whichever runs out first, steps or time, so a run cut short by the time
            # limit (a busy machine) still ends with a small learning rate instead of mid-schedule.
            progress = step / total
            if recipe.time_limit_s is not None:
                progress = max(progress, (time.perf_counter() - started) / recipe.time_limit_s)
            for group in optimizer.param_groups:
                group["lr"] = (
                    recipe.lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
                )
            optimizer.step()
            step += 1
            loss_value = loss.item()
            reporter.step(step, loss_value / math.log(2))
            if step >= total:
                break
            if recipe.time_limit_s is not None and time.perf_counter() - started > recipe.time_limit_s:
                stopped_early = True
                break
        if stopped_early:
            break
    model.eval()
    info = {
        "steps": step,
        "planned_steps": total,
        "stopped_by_time_limit": stopped_early,
        "train_seconds": round(time.perf_counter() - started, 1),
        "train_cpu_seconds": round(time.process_time() - cpu_started, 1),  # shows how contended the CPU was
        "train_bpc_last_batch": round(loss_value / math.log(2), 4),
        "train_chars": len(ids),
    }
    return model.cpu(), vocab, info
