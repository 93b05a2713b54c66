"""Training recipe for the character LSTM."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from generation.models.device import bf16_autocast
from generation.models.lstm import CharLSTM, LstmConfig, LstmState
from generation.models.vocab import CharVocab
from generation.train.data import TextCorpus
from generation.train.progress import SAFETY_TIME_LIMIT_S, ProgressReporter

SEPARATOR = "\n\n"


@dataclass
class LstmRecipe:
    """Hyperparameters; the defaults are the CPU recipe, sized to finish within the training-time
    budget (benchmarks.generation_quality) in float32 on a 2-core AVX2-only CPU, the slowest it targets.

    Why these values (held-out bits per character on the twin-free split, generation.train.data): locked
    dropout beat plain dropout; DropConnect on the recurrent weights and strong weight decay helped
    more than heavier AWD regularisation, which under-fits in this budget; a wider network or a larger
    batch lost at equal CPU time; averaging the weights gained nothing over the cosine schedule's small
    final steps. More steps keep helping: the budget, not the data, sets the score.
    """

    epochs: int = 22
    batch_size: int = 32  # a larger batch moves more characters per CPU second, but fewer updates lose
    seq_len: int = 64
    embed_dim: int = 128
    hidden_size: int = 256  # wider is worse at equal time; narrower is no better at equal time
    layers: int = 2
    dropout: float = 0.3  # locked (same mask at every time step) on inputs, between layers, on outputs
    embed_dropout: float = 0.0  # drops whole characters' embeddings for a batch (AWD-LSTM)
    weight_drop: float = 0.25  # DropConnect on the hidden-to-hidden weights (AWD-LSTM)
    tie_embeddings: bool = True  # rare (mostly Chinese) characters learn from input and output roles
    lr: float = 4e-3
    weight_decay: float = 0.3  # also shrinks rare characters' embeddings
    clip: float = 1.0
    min_char_count: int = 2  # training singletons become UNK, so the model learns how often UNK comes
    # bf16 autocast on CPUs with native bf16: faster there, but a default model that depends on the CPU.
    cpu_bf16: bool = False
    ema_decay: float = 0.0  # exponential moving average of the weights; the average is what is saved
    ema_start: float = 0.5  # ... from this fraction of the run on (0 = from the start)
    max_steps: int | None = None  # stop early (tests, quick checks)
    # A safety net only: the recipe is its steps. A run it cuts short says so in its report.
    time_limit_s: float | None = SAFETY_TIME_LIMIT_S

    def to_dict(self) -> dict:
        return asdict(self)

    def network(self, vocab_size: int) -> LstmConfig:
        """The shape of the network this recipe trains over a vocabulary of `vocab_size`."""
        return LstmConfig(
            vocab_size, self.embed_dim, self.hidden_size, self.layers, self.dropout, self.tie_embeddings
        )

    @classmethod
    def dry_run(cls) -> LstmRecipe:
        return cls(epochs=1, batch_size=4, seq_len=32, embed_dim=16, hidden_size=32, layers=1, max_steps=8)

    @classmethod
    def for_cuda(cls) -> LstmRecipe:
        return cls(batch_size=128, hidden_size=512, time_limit_s=None)


def training_stream(corpus: TextCorpus, vocab: CharVocab) -> torch.Tensor:
    return torch.tensor(vocab.encode(SEPARATOR.join(corpus.train)), dtype=torch.long)


def _locked_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Dropout with one mask per sequence, shared by all time steps (x: batch, time, features)."""
    if p <= 0:
        return x
    mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - p) / (1 - p)
    return x * mask


def regularized_forward(
    model: CharLSTM, ids: torch.Tensor, state: LstmState | None, recipe: LstmRecipe
) -> tuple[torch.Tensor, LstmState]:
    """The training-time forward pass: the same weights as `model.forward`, with AWD-LSTM noise
    (embedding dropout, locked dropout, DropConnect on weight_hh), run one layer at a time through
    the fused LSTM kernel that nn.LSTM itself calls."""
    rnn = model.rnn
    weight = model.embed.weight
    if recipe.embed_dropout > 0:
        keep = weight.new_empty(weight.shape[0], 1).bernoulli_(1 - recipe.embed_dropout)
        weight = weight * keep / (1 - recipe.embed_dropout)
    x = _locked_dropout(F.embedding(ids, weight), recipe.dropout)
    if state is None:
        zeros = x.new_zeros(rnn.num_layers, ids.shape[0], rnn.hidden_size)
        state = (zeros, zeros)
    hidden, cell = [], []
    for layer in range(rnn.num_layers):
        w_ih, w_hh, b_ih, b_hh = (
            getattr(rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        )
        w_hh = F.dropout(w_hh, recipe.weight_drop) if recipe.weight_drop > 0 else w_hh
        x, h, c = (
            torch._VF.lstm(  # what nn.LSTM.forward calls; (layers=1, dropout=0, train, uni, batch_first)
                x,
                (state[0][layer : layer + 1], state[1][layer : layer + 1]),
                [w_ih, w_hh, b_ih, b_hh],
                True,
                1,
                0.0,
                True,
                False,
                True,
            )
        )
        hidden.append(h)
        cell.append(c)
        x = _locked_dropout(x, recipe.dropout)
    return model.logits(x), (torch.cat(hidden), torch.cat(cell))


def _apply_average(model: CharLSTM, averaged: list[torch.Tensor]) -> None:
    with torch.no_grad():
        for parameter, average in zip(model.parameters(), averaged, strict=True):
            parameter.copy_(average)


def train_lstm(
    recipe: LstmRecipe, corpus: TextCorpus, device: torch.device, reporter_factory, seed: int
) -> tuple[CharLSTM, CharVocab, dict]:
    """The character vocabulary of the training text, then the network trained on its stream."""
    torch.manual_seed(seed)
    vocab = CharVocab.build(corpus.train, min_count=recipe.min_char_count)
    ids = training_stream(corpus, vocab)
    model, info = fit_stream(recipe, recipe.network(len(vocab)), ids, device, reporter_factory)
    return model, vocab, {**info, "train_chars": len(ids)}


def fit_stream(
    recipe: LstmRecipe, config: LstmConfig, ids: torch.Tensor, device: torch.device, reporter_factory
) -> tuple[CharLSTM, dict]:
    """Truncated back-propagation over `batch_size` parallel streams of `ids`, carrying state across
    windows; the caller seeds torch. Returns the trained network (on the CPU) and the run's figures."""
    model = CharLSTM(config).to(device)
    per_stream = (len(ids) - 1) // recipe.batch_size
    windows = max(1, per_stream // recipe.seq_len)
    inputs = ids[: per_stream * recipe.batch_size].view(recipe.batch_size, per_stream)
    targets = ids[1 : per_stream * recipe.batch_size + 1].view(recipe.batch_size, per_stream)
    total = recipe.epochs * windows
    if recipe.max_steps is not None:
        total = min(total, recipe.max_steps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    use_amp = bf16_autocast(device, recipe.cpu_bf16)
    loss_fn = nn.CrossEntropyLoss()
    reporter: ProgressReporter = reporter_factory(total)
    cpu_started, started, step, stopped_early, loss_value = (
        time.process_time(),
        time.perf_counter(),
        0,
        False,
        float("nan"),
    )
    averaged: list[torch.Tensor] | None = None
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
                logits, state = regularized_forward(model, x, state, recipe)
                loss = loss_fn(logits.float().reshape(-1, config.vocab_size), y.reshape(-1))
            state = (state[0].detach(), state[1].detach())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), recipe.clip)
            # Cosine decay over the planned steps: the schedule, like the model, is the same on any CPU.
            progress = step / total
            for group in optimizer.param_groups:
                group["lr"] = (
                    recipe.lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
                )
            optimizer.step()
            if recipe.ema_decay > 0 and progress >= recipe.ema_start:
                with torch.no_grad():
                    if averaged is None:
                        averaged = [parameter.detach().clone() for parameter in model.parameters()]
                    else:
                        for average, parameter in zip(averaged, model.parameters(), strict=True):
                            average.lerp_(parameter.detach(), 1 - recipe.ema_decay)
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
    if averaged is not None:
        _apply_average(model, averaged)
    model.eval()
    info = {
        "steps": step,
        "planned_steps": total,
        "stopped_by_time_limit": stopped_early,
        "train_seconds": round(time.perf_counter() - started, 1),
        "train_cpu_seconds": round(time.process_time() - cpu_started, 1),  # shows how contended the CPU was
        "train_bpc_last_batch": round(loss_value / math.log(2), 4),
    }
    return model.cpu(), info
