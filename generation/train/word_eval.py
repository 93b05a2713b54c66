"""Held-out bits per character of the word-level model, comparable with the character LSTM's and
the character n-gram's: the bits of every held-out token under the whole model (LSTM, cache and
n-gram mixed, as generation mixes them), plus the cost of naming each unknown character, summed
and divided by the held-out characters. Static: eval mode, no weight updates."""

from __future__ import annotations

import math

import torch

from generation.models.subword import EOS_ID, SubwordVocab
from generation.models.word_lm import WordLM
from generation.train.evaluate import BitTally

MIN_CONTEXT_TOKENS = 256  # held-out text is scored as the continuation of the file's preceding text
ROWS_PER_CHUNK = 256  # positions scored together (bounds the memory of the cache's score matrix)


@torch.inference_mode()
def word_bits_per_char(
    model: WordLM, vocab: SubwordVocab, contexts: list[str], texts: list[str]
) -> dict[str, float]:
    """BitTally's figures for `texts`, each scored after the end of its `contexts` entry."""
    model.eval()
    tally = BitTally(vocab)
    keep = max(MIN_CONTEXT_TOKENS, model.config.cache_size)
    for context, text in zip(contexts, texts, strict=True):
        spans = vocab.spans(text)
        if not spans:
            continue
        history = [EOS_ID, *vocab.encode(context)[-keep:]]
        ids = torch.tensor(history + [token for token, _ in spans], dtype=torch.long)
        hidden, _ = model.network.rnn(model.network.embed(ids[None, :-1]))
        hidden = hidden[0].float()
        logits = model.network.logits(hidden).float()
        first = len(history) - 1  # the position whose output predicts the first held-out token
        positions = torch.arange(len(ids) - 1)
        order = model.config.ngram_order
        for start in range(first, len(ids) - 1, ROWS_PER_CHUNK):
            rows = positions[start : start + ROWS_PER_CHUNK]
            window = (positions[None, :] < rows[:, None]) & (
                positions[None, :] >= rows[:, None] - model.config.cache_size
            )
            probs = model.mix(
                logits[rows],
                [ids[max(0, int(row) + 2 - order) : int(row) + 1].tolist() for row in rows],
                (hidden[rows], hidden, ids[1:], window),
            )
            chosen = probs.gather(1, ids[rows + 1].unsqueeze(1)).squeeze(1).double()
            for offset, probability in enumerate(chosen.tolist()):
                _, characters = spans[int(rows[offset]) - first]
                tally.add(characters[0], -math.log2(max(probability, 1e-300)))
                for char in characters[1:]:
                    tally.add(char, 0.0)
    return tally.summary()
