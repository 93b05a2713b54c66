"""The word-level model, continuing prompts: the LSTM stepped one token at a time for every row of a
batch, its distribution mixed with the cache and the n-gram exactly as the scorer mixes them
(generation.models.word_lm), then sampled with the character generator's row-wise sampler.

A row ends once it has added the requested characters and then a token that ends a sentence, or
EOS, or EXTRA_CHARS more characters. UNK is never drawn, and EOS not before the requested length.
The sampling guards (generation.service.word_guards) keep English words to the training text's
words and refuse a token that would repeat a long stretch of the training text verbatim.
Each row draws its random numbers from its own seeded generator and every kernel computes rows
independently, so a seeded request gives the same text in any batch.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import torch

from generation.api import TextRequest, TextResult
from generation.models.checkpoint import Checkpoint, load_checkpoint
from generation.models.device import resolve_device
from generation.models.subword import EOS_ID, SENTENCE_END, UNK_ID, SubwordVocab
from generation.models.word_lm import WordLM
from generation.service.text_stepper import sample_ids, text_stepper
from generation.service.word_guards import CopyGuard, VocabularyGuard

# Past the requested length, a row may write this many more characters looking for a sentence end.
EXTRA_CHARS = 200
# Draws of one row in one step that the copy guard may refuse before the draw stands as it is.
COPY_RETRIES = 8


class _Rows:
    """Per-row generation state, kept for the rows still writing (dropped as rows finish)."""

    def __init__(self, state: tuple[torch.Tensor, torch.Tensor], keys, targets, valid, count) -> None:
        self.state = state
        self.keys, self.targets, self.valid, self.count = keys, targets, valid, count
        self.used = 0  # slots any row has filled (the tensors are grown ahead, in doublings)

    def grow(self, slots: int) -> None:
        """Room for `slots` cached positions per row (the cache fills from its first slot on)."""
        extra = slots - self.keys.shape[1]
        rows = self.keys.shape[0]
        self.keys = torch.cat([self.keys, self.keys.new_zeros(rows, extra, self.keys.shape[2])], dim=1)
        self.targets = torch.cat([self.targets, self.targets.new_zeros(rows, extra)], dim=1)
        self.valid = torch.cat([self.valid, self.valid.new_zeros(rows, extra)], dim=1)

    def keep(self, index: torch.Tensor) -> None:
        self.state = (self.state[0].index_select(1, index), self.state[1].index_select(1, index))
        self.keys = self.keys.index_select(0, index)
        self.targets = self.targets.index_select(0, index)
        self.valid = self.valid.index_select(0, index)
        self.count = self.count.index_select(0, index)


class WordTextGenerator:
    """The champion word-level model, continuing prompts."""

    def __init__(self, checkpoint: Checkpoint, device: torch.device) -> None:
        assert isinstance(checkpoint.vocab, SubwordVocab) and isinstance(checkpoint.model, WordLM)
        self.model: WordLM = checkpoint.model.cpu()
        self.vocab: SubwordVocab = checkpoint.vocab
        self.device = torch.device("cpu")  # the mixture's n-gram and cache live on the CPU
        self.version = str(
            checkpoint.metadata.get("version") or (checkpoint.path.name if checkpoint.path else "unknown")
        )
        self.metrics = checkpoint.metrics
        self.created_at = str(checkpoint.metadata.get("created_at", ""))
        self.slots = max(1, self.model.config.cache_size)
        self.model.ngram()  # built now, not on the first request
        self._ends = torch.tensor(
            [bool(SENTENCE_END.search(token)) for token in self.vocab.tokens], dtype=torch.bool
        )
        self._lengths = torch.tensor([len(token) for token in self.vocab.tokens])
        self._lengths[: EOS_ID + 1] = 0
        training_text = self.vocab.decode(self.model.memory.tolist())
        self.words = VocabularyGuard(training_text, self.vocab.tokens)
        self.copies = CopyGuard(training_text)
        with torch.inference_mode():
            self.stepper = text_stepper(self.model.network, self.device)

    @classmethod
    def load(cls, checkpoint_dir: Path, device: str = "auto") -> WordTextGenerator:
        chosen = resolve_device(device)
        return cls(load_checkpoint(Path(checkpoint_dir), "word", device="cpu"), chosen)

    def _remember(
        self, rows: _Rows, top: torch.Tensor, following: torch.Tensor, live: torch.Tensor | None = None
    ) -> None:
        """Store each (live) row's hidden state `top` with the token that followed it in its cache slot."""
        index = torch.arange(len(top)) if live is None else torch.nonzero(live).flatten()
        if len(index) == 0:
            return
        needed = min(self.slots, int(rows.count.max()) + 1)
        if needed > rows.keys.shape[1]:
            rows.grow(min(self.slots, max(needed, 2 * rows.keys.shape[1])))
        rows.used = max(rows.used, needed)
        slots = rows.count[index] % self.slots
        rows.keys[index, slots] = top[index]
        rows.targets[index, slots] = following[index]
        rows.valid[index, slots] = True
        rows.count[index] += 1

    def _read_prompts(self, prompts: list[list[int]]) -> tuple[_Rows, torch.Tensor]:
        """Feed every prompt; returns the rows' state (cache filled with the prompts' positions) and
        the top hidden state after each prompt's last token."""
        count = len(prompts)
        longest = max(map(len, prompts))
        rows = _Rows(
            self.stepper.new_state(count),
            torch.zeros(count, 0, self.stepper.hidden_size),
            torch.zeros(count, 0, dtype=torch.long),
            torch.zeros(count, 0, dtype=torch.bool),
            torch.zeros(count, dtype=torch.long),
        )
        lengths = torch.tensor([len(prompt) for prompt in prompts])
        table = torch.full((count, longest + 1), UNK_ID, dtype=torch.long)
        for row, prompt in enumerate(prompts):
            table[row, : len(prompt)] = torch.tensor(prompt)
        last = torch.zeros(count, self.stepper.hidden_size)
        for position in range(longest):
            # Every row steps; rows whose prompt has ended step on padding, and their state is put back.
            saved = (rows.state[0].clone(), rows.state[1].clone())
            top = self.stepper.advance(table[:, position], rows.state).clone()
            reading = lengths > position
            ended = ~reading
            rows.state[0][:, ended] = saved[0][:, ended]
            rows.state[1][:, ended] = saved[1][:, ended]
            last[reading] = top[reading]
            self._remember(rows, top, table[:, position + 1], lengths > position + 1)
        return rows, last

    def _probabilities(self, rows: _Rows, top: torch.Tensor, histories: list[list[int]]) -> torch.Tensor:
        """The model's next-token distribution per row (the mixture the scorer measures)."""
        used = rows.used
        cache = (top, rows.keys[:, :used], rows.targets[:, :used], rows.valid[:, :used])
        return self.model.mix(self.stepper.logits(top), histories, cache)

    def _guarded_log(self, probs: torch.Tensor, partials: list[str], may_end: torch.Tensor) -> torch.Tensor:
        """Log-probabilities with UNK, EOS where `may_end` is False, and the tokens the vocabulary
        guard refuses at -inf; a row the guard would leave with nothing keeps the model's choice.

        Masks are added as 0/-inf rows: taking the log of zeros or masking in place is many times
        slower on CPU than an addition."""
        log_probs = probs.clamp_min_(torch.finfo(probs.dtype).tiny).log_()
        log_probs[:, UNK_ID] = float("-inf")
        log_probs[:, EOS_ID] += torch.zeros(len(may_end)).masked_fill_(~may_end, float("-inf"))
        guarded = log_probs + torch.stack([self.words.penalty(partial) for partial in partials])
        empty = guarded.amax(dim=1) == float("-inf")
        if bool(empty.any()):
            guarded[empty] = log_probs[empty]
        return guarded

    @torch.inference_mode()
    def generate_batch(self, requests: list[TextRequest]) -> list[TextResult]:
        if not requests:
            return []
        seeds = [
            request.seed if request.seed is not None else secrets.randbelow(2**31) for request in requests
        ]
        steps = max(request.length for request in requests) + EXTRA_CHARS
        uniforms = torch.stack(
            [
                torch.rand(steps, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
                for seed in seeds
            ]
        ).float()
        histories = [[EOS_ID, *self.vocab.encode(request.prompt)] for request in requests]
        rows, top = self._read_prompts(histories)
        # Per-row settings and counters, kept for the rows still writing (`live`: their request indices).
        inverse_temperature = torch.tensor([[1.0 / r.temperature] for r in requests])
        top_p = torch.tensor([[r.top_p] for r in requests])
        vocab_size = len(self.vocab)
        top_k = torch.tensor([[r.top_k if 0 < r.top_k < vocab_size else vocab_size] for r in requests])
        wanted = torch.tensor([r.length for r in requests])
        written = torch.zeros(len(requests), dtype=torch.long)
        produced: list[list[int]] = [[] for _ in requests]
        partials = [VocabularyGuard.start(request.prompt) for request in requests]
        written_text = [""] * len(requests)
        live = list(range(len(requests)))
        for step in range(steps):
            may_end = written >= wanted
            probs = self._probabilities(rows, top, [histories[row] for row in live])
            log_probs = self._guarded_log(probs, [partials[row] for row in live], may_end)
            settings = (inverse_temperature, top_p, top_k)
            ids = sample_ids(log_probs.clone(), uniforms[:, step], *settings)
            drawn = ids.tolist()
            for rank, row in enumerate(live):
                token = drawn[rank]
                for _ in range(COPY_RETRIES):
                    piece = self.vocab.tokens[token] if token > EOS_ID else ""
                    if not self.copies.copies(written_text[row] + piece, len(piece)):
                        break
                    log_probs[rank, token] = float("-inf")
                    token = int(
                        sample_ids(
                            log_probs[rank : rank + 1].clone(),
                            uniforms[rank : rank + 1, step],
                            *(setting[rank : rank + 1] for setting in settings),
                        )[0]
                    )
                if token != drawn[rank]:
                    ids[rank] = token
                histories[row].append(token)
                produced[row].append(token)
                piece = self.vocab.tokens[token] if token > EOS_ID else ""
                written_text[row] += piece
                partials[row] = VocabularyGuard.follow(partials[row], piece)
            written += self._lengths[ids]
            done = (ids == EOS_ID) | (written >= wanted + EXTRA_CHARS)
            done |= (written >= wanted) & self._ends[ids]
            previous = top
            top = self.stepper.advance(ids, rows.state).clone()
            self._remember(rows, previous, ids)
            if bool(done.any()):
                keep = torch.nonzero(~done).flatten()
                if len(keep) == 0:
                    break
                live = [live[rank] for rank in keep.tolist()]
                top, uniforms = top[keep], uniforms[keep]
                inverse_temperature, top_p, top_k = inverse_temperature[keep], top_p[keep], top_k[keep]
                wanted, written = wanted[keep], written[keep]
                rows.keep(keep)
        return [
            TextResult(
                text=request.prompt + self.vocab.decode(produced[row]),
                model_version=self.version,
                seed=seeds[row],
                model="word",
            )
            for row, request in enumerate(requests)
        ]

    def warm_up(self) -> None:
        self.generate_batch([TextRequest(prompt="AI", length=20, seed=0, model="word")])
