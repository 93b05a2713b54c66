"""Training recipe for the word-level (subword) LSTM: learn the vocabulary, then train the network
on the token stream with the character LSTM's loop (generation.train.lstm.fit_stream)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import torch

from generation.models.subword import EOS_ID, SPECIAL_TOKENS, SubwordVocab, pieces
from generation.models.word_lm import WordLM, WordLmConfig
from generation.train.data import TextCorpus
from generation.train.lstm import LstmRecipe, fit_stream

RARE_SENTINEL = "\ufffd"  # stands in for rare characters while merges are learned; never a token


@dataclass
class WordRecipe(LstmRecipe):
    """Hyperparameters of the subword LSTM; the defaults are the CPU recipe, sized like the character
    recipe to finish within the training-time budget on a 2-core AVX2-only CPU.

    Why these values (held-out bits per character on the twin-free split): a modest vocabulary keeps
    every frequent English word and Chinese word pair whole while leaving enough examples per token;
    AWD-style regularisation carries over from the character recipe; a cache over the recent hidden
    states and a token n-gram over the training text, mixed into the network's distribution, catch
    the corpus's repeated terms that a small network trained for minutes cannot memorise.
    """

    epochs: int = 22  # what fits the time budget; more keeps helping a little
    seq_len: int = 32  # tokens: about as many characters as the character recipe's window
    vocab_size: int = 2000  # characters plus learned merges
    min_char_count: int = 2  # training singletons become UNK, so the model learns how often UNK comes
    cache_size: int = 1000  # recent tokens the cache looks back over
    cache_theta: float = 1.0  # sharpness of the cache's match on hidden states (flatter and sharper lose)
    cache_weight: float = 0.15  # the cache's share of the mixture
    ngram_order: int = 5  # a 4-gram loses a little, a 3-gram more
    ngram_discount: float = 0.75
    ngram_weight: float = 0.4  # the n-gram's share: the network alone under-fits in minutes of CPU

    @classmethod
    def dry_run(cls) -> WordRecipe:
        return cls(
            epochs=1,
            batch_size=4,
            seq_len=16,
            embed_dim=16,
            hidden_size=32,
            layers=1,
            vocab_size=300,
            cache_size=50,
            max_steps=8,
        )

    @classmethod
    def for_cuda(cls) -> WordRecipe:
        return cls(batch_size=128, hidden_size=512, time_limit_s=None)


def learn_vocab(texts: list[str], size: int, min_char_count: int = 2) -> SubwordVocab:
    """Byte-pair merges learned by `tokenizers` inside the pieces of `texts` (generation.models.subword),
    over every character seen `min_char_count` times; rarer characters are UNK."""
    from tokenizers import Tokenizer, models, trainers  # training only: the loader needs no tokenizers

    counts = Counter(char for text in texts for char in text)
    chars = sorted(char for char, count in counts.items() if count >= min_char_count)
    known = set(chars)
    words = ["".join(c if c in known else RARE_SENTINEL for c in piece) for t in texts for piece in pieces(t)]
    tokenizer = Tokenizer(models.BPE())
    trainer = trainers.BpeTrainer(
        vocab_size=max(size, len(chars) + len(SPECIAL_TOKENS)),
        min_frequency=2,
        show_progress=False,
        initial_alphabet=chars,
        limit_alphabet=len(chars) + 1,
    )
    tokenizer.train_from_iterator(words, trainer)
    learned = json.loads(tokenizer.to_str())["model"]["merges"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in learned]
    merges = [(left, right) for left, right in merges if RARE_SENTINEL not in left + right]
    budget = size - len(SPECIAL_TOKENS) - len(chars)
    merges = merges[: max(0, budget)]
    merged = dict.fromkeys(left + right for left, right in merges)
    tokens = [*SPECIAL_TOKENS, *chars, *(token for token in merged if token not in known)]
    return SubwordVocab(tokens, merges)


def training_stream(corpus: TextCorpus, vocab: SubwordVocab) -> torch.Tensor:
    """Every training file's tokens, each followed by EOS."""
    ids: list[int] = []
    for text in corpus.train:
        ids += [*vocab.encode(text), EOS_ID]
    return torch.tensor(ids, dtype=torch.long)


def train_word(
    recipe: WordRecipe, corpus: TextCorpus, device: torch.device, reporter_factory, seed: int
) -> tuple[WordLM, SubwordVocab, dict]:
    """The vocabulary, the network trained on the token stream, and the mixture around it."""
    torch.manual_seed(seed)
    vocab = learn_vocab(corpus.train, recipe.vocab_size, recipe.min_char_count)
    ids = training_stream(corpus, vocab)
    network = recipe.network(len(vocab))
    lstm, info = fit_stream(recipe, network, ids, device, reporter_factory)
    config = WordLmConfig(
        **network.to_dict(),
        memory_tokens=len(ids),
        cache_size=recipe.cache_size,
        cache_theta=recipe.cache_theta,
        cache_weight=recipe.cache_weight,
        ngram_order=recipe.ngram_order,
        ngram_discount=recipe.ngram_discount,
        ngram_weight=recipe.ngram_weight,
    )
    model = WordLM(config, lstm, memory=ids)
    chars = sum(map(len, corpus.train))
    return model, vocab, {**info, "train_tokens": len(ids), "train_chars": chars}
