"""Request/response types and limits shared by the bot, the client and the service, and the report
the trainer hands the bot.

This module must stay light: no torch import, so the bot can use it without loading models.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_IMAGES = 16
MAX_PROMPT_CHARS = 500
MAX_TEXT_LENGTH = 1000
DEFAULT_TEXT_LENGTH = 300
ModelKind = Literal["gan", "lstm", "vae", "word"]
MODEL_KINDS: tuple[ModelKind, ...] = get_args(ModelKind)  # every generator kind, in a fixed order
ImageKind = Literal["gan", "vae"]
IMAGE_KINDS: tuple[ImageKind, ...] = get_args(ImageKind)  # the kinds that draw digits
DEFAULT_IMAGE_KIND: ImageKind = "gan"
TextKind = Literal["lstm", "word"]
TEXT_KINDS: tuple[TextKind, ...] = get_args(TextKind)  # the kinds that write text
# TEXT_MODEL's names for the text kinds, and how captions name them.
TEXT_MODEL_KINDS: dict[str, TextKind] = {"char": "lstm", "word": "word"}
TEXT_KIND_NAMES: dict[TextKind, str] = {"lstm": "char LSTM", "word": "word LSTM"}
DEFAULT_TEXT_KIND: TextKind = "word"
# What each kind generates, in the words users and error messages use.
MODEL_OUTPUTS: dict[ModelKind, Literal["image", "text"]] = {
    kind: "image" if kind in IMAGE_KINDS else "text" for kind in MODEL_KINDS
}

# HTTP protocol between generation.client and generation.service (neither imports the other).
TIMEOUT_HEADER = "X-Request-Timeout"  # seconds the caller will wait; the service's deadline is the smaller
PNG = "image/png"  # an image request with `Accept: image/png` gets the raw PNG, and these headers:
MODEL_VERSION_HEADER = "X-Model-Version"
SEED_HEADER = "X-Seed"
DIGITS_HEADER = "X-Digits"  # the digits drawn, as a JSON list (null where unconditional)
JOB_ID_HEADER = "X-Job-Id"  # a 409 to POST /v1/train names the running job and its kind
JOB_KIND_HEADER = "X-Job-Kind"

REPORT_EVENT = "report"  # the `event` of the trainer's report line
PROGRESS_EVENT = "progress"  # the `event` of the trainer's progress lines

# Training jobs (the service's /v1/train, and the bot's in-process jobs).
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
# Recipe keys the trainers take as options of their own (`--max-steps 40`); any other recipe key is a
# setting of the recipe (`--set lr=0.001`).
TRAINER_OPTIONS = ("epochs", "max_steps", "seed", "time_limit", "data", "device", "threads")
MAX_RECIPE_KEYS = 16
RECIPE_KEY = r"^[a-z][a-z0-9_]{0,39}$"
RecipeValue = bool | int | float | str


class GenerationError(Exception):
    """Base class for errors the bot can show to a user."""


class InvalidRequest(GenerationError):
    """The request breaks a limit; the message says which, in plain words."""


class GeneratorUnavailable(GenerationError):
    """No model is loaded, or the service is down or overloaded."""


class DeadlineExceeded(GeneratorUnavailable):
    """The request could not finish within its deadline; nothing else was affected."""


class Overloaded(GeneratorUnavailable):
    """Too many requests are queued; trying again shortly may work."""


class JobConflict(GenerationError):
    """A training job for this kind is running already."""

    def __init__(self, kind: str, job_id: str) -> None:
        super().__init__(f"{kind} is already being trained by job {job_id}")
        self.kind, self.job_id = kind, job_id


class UnknownJob(GenerationError, KeyError):
    """No training job has this id."""

    def __str__(self) -> str:
        return f"there is no job {self.args[0]!r}" if self.args else "there is no such job"


class NoSample(GenerationError):
    """The job has no checkpoint to draw a sample from (it did not succeed, or its kind draws none)."""


class ImageRequest(BaseModel):
    """Draw `count` digits with the `model` generator; `digit=None` draws a mix."""

    model_config = ConfigDict(extra="forbid")

    model: ImageKind = DEFAULT_IMAGE_KIND
    digit: int | None = Field(default=None, ge=0, le=9)
    count: int = Field(default=8, ge=1, le=MAX_IMAGES)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)


class ImageResult(BaseModel):
    """A PNG grid plus what made it."""

    png: bytes
    model_version: str
    seed: int
    digits: list[int | None]

    def to_json(self) -> dict:
        """JSON-safe form: the PNG as base64."""
        data = self.model_dump(exclude={"png"})
        data["png_base64"] = base64.b64encode(self.png).decode("ascii")
        return data

    @classmethod
    def from_json(cls, data: dict) -> ImageResult:
        """Inverse of to_json."""
        fields = {key: value for key, value in data.items() if key != "png_base64"}
        return cls(png=base64.b64decode(data["png_base64"]), **fields)


class TextRequest(BaseModel):
    """Continue `prompt` for `length` characters with the `model` text generator (the word model
    stops at the first sentence end past `length`)."""

    model_config = ConfigDict(extra="forbid")

    model: TextKind = DEFAULT_TEXT_KIND
    prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS)
    length: int = Field(default=DEFAULT_TEXT_LENGTH, ge=1, le=MAX_TEXT_LENGTH)
    temperature: float = Field(default=0.8, gt=0.0, le=2.0)
    top_k: int = Field(default=0, ge=0, le=1000)  # 0 = off
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)


class TextResult(BaseModel):
    """Generated text (prompt included) plus what made it."""

    text: str
    model_version: str
    seed: int
    model: TextKind = "lstm"  # the generator that wrote it


class ModelInfo(BaseModel):
    """The champion of one generator kind."""

    kind: ModelKind
    version: str | None
    metrics: dict[str, float] = Field(default_factory=dict)
    created_at: str | None = None


class ModelVersion(BaseModel):
    """One stored version of a generator: the champion, a previous champion, or a candidate that was
    not promoted (`note` says why, or which rollback replaced it)."""

    kind: ModelKind
    version: str
    status: Literal["champion", "previous", "candidate", "rejected"]
    created_at: str | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    note: str = ""


class ChampionScore(BaseModel):
    """The champion a training run compared its candidate with: its score on the run's data, and
    `error` when that score could not be had or does not compare."""

    version: str
    metrics: dict[str, float] | None = None
    error: str | None = None


class TrainReport(BaseModel):
    """The trainer's final stdout line, `{"event": "report", ...}`: what it trained and whether the
    candidate was promoted. Every field but kind, version and promoted has a default, so a report
    written before a field existed still loads."""

    warnings: list[str] = Field(default_factory=list)
    # A generator's ModelKind, or the kind of another trainer the bot runs that writes the same line.
    kind: str = Field(min_length=1, max_length=40)
    version: str
    path: str | None = None  # the candidate's checkpoint folder
    promoted: bool
    reason: str = ""
    candidate: dict[str, float] = Field(default_factory=dict)
    targets_met: dict[str, bool] = Field(default_factory=dict)
    champion: ChampionScore | None = None
    train: dict[str, Any] = Field(default_factory=dict)  # steps, timings and losses of the run
    device: str = ""
    dry_run: bool = False
    cleaned_partial: list[str] = Field(default_factory=list)
    seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        """The report line's object: only the fields this report was made or loaded with, in the
        trainer's order, so a stored report is written back byte for byte."""
        return {"event": REPORT_EVENT, **self.model_dump(exclude_unset=True)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainReport:
        """Inverse of to_json; raises pydantic's ValidationError (a ValueError) on a malformed report."""
        return cls.model_validate({key: value for key, value in data.items() if key != "event"})


class JobProgress(BaseModel):
    """One progress line of a trainer: `phase` is "train", "evaluate" or "done"."""

    model_config = ConfigDict(extra="ignore")

    phase: str = "train"
    step: int = 0
    total_steps: int = 0
    loss: float | None = None
    elapsed_s: float = 0.0
    eta_s: float = 0.0

    @property
    def training_loss(self) -> tuple[str, int, float] | None:
        """(phase, step, loss) when this line reports a training loss (evaluation lines do not)."""
        if self.loss is None or self.phase in ("evaluate", "done"):
            return None
        return self.phase, self.step, self.loss


class TrainRequest(BaseModel):
    """POST /v1/train: train `kind` with the default recipe, changed by `recipe` (e.g. {"epochs": 2,
    "lr": 0.001}); `dry_run` trains a tiny model on tiny data in seconds."""

    model_config = ConfigDict(extra="forbid")

    kind: ModelKind
    recipe: dict[str, RecipeValue] = Field(default_factory=dict, max_length=MAX_RECIPE_KEYS)
    dry_run: bool = False

    @field_validator("recipe")
    @classmethod
    def _plain_settings(cls, recipe: dict[str, RecipeValue]) -> dict[str, RecipeValue]:
        for key, value in recipe.items():
            if not re.match(RECIPE_KEY, key):
                raise ValueError(f"recipe key {key!r} is not a setting name")
            if isinstance(value, str) and (len(value) > 200 or not value.isprintable()):
                raise ValueError(f"recipe value of {key} must be at most 200 printable characters")
        return recipe


class JobInfo(BaseModel):
    """A training job as the service (or the bot's in-process runner) reports it."""

    id: str
    kind: str
    state: JobState
    progress: JobProgress | None = None
    losses: list[tuple[str, int, float]] = Field(default_factory=list)  # (phase, step, loss) as reported
    report: TrainReport | None = None
    error: str = ""
    pid: int | None = None
    created_at: str = ""
    seconds: float = 0.0

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


def trainer_args(recipe: Mapping[str, RecipeValue], dry_run: bool = False) -> list[str]:
    """The trainer's command-line options for a recipe: `--dry-run`, its own options, then `--set`s."""
    args = ["--dry-run"] if dry_run else []
    for key, value in recipe.items():
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        if key in TRAINER_OPTIONS:
            args += [f"--{key.replace('_', '-')}", shown]
        else:
            args += ["--set", f"{key}={shown}"]
    return args


def recipe_from_args(args: Sequence[str]) -> tuple[dict[str, RecipeValue], bool]:
    """Inverse of trainer_args: (recipe, dry_run) from trainer options such as RETRAIN_ARGS; ValueError
    on an option a recipe cannot say."""
    recipe: dict[str, RecipeValue] = {}
    dry_run = False
    rest = list(args)
    while rest:
        option = rest.pop(0)
        if option == "--dry-run":
            dry_run = True
            continue
        key = option.removeprefix("--").replace("-", "_")
        if not option.startswith("--") or not rest or (key not in TRAINER_OPTIONS and key != "set"):
            raise ValueError(f"trainer option {option!r} cannot be sent as a recipe")
        value = rest.pop(0)
        if key == "set":
            key, sep, value = value.partition("=")
            if not sep:
                raise ValueError(f"--set wants KEY=VALUE, got {key!r}")
        recipe[key.strip()] = value.strip()
    return recipe, dry_run


class RollbackRequest(BaseModel):
    """Make `version` champion again; None means the previous champion."""

    model_config = ConfigDict(extra="forbid")

    kind: ModelKind
    version: str | None = Field(default=None, min_length=1, max_length=100)


_ERROR_WORDING = {
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be greater than {gt}",
    "string_too_long": "must be at most {max_length} characters",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "int_type": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "string_type": "must be text",
    "extra_forbidden": "is not a known field",
    "missing": "is required",
    "literal_error": "must be {expected}",
}


def explain_validation_error(error: ValidationError | list[dict]) -> str:
    """One plain sentence per broken limit, e.g. "count must be at most 16"."""
    details = error.errors() if isinstance(error, ValidationError) else error
    sentences = []
    for detail in details:
        if detail.get("type") == "json_invalid":
            sentences.append("the request body is not valid JSON")
            continue
        location = [str(part) for part in detail.get("loc", ()) if part not in ("body", "query")]
        field = ".".join(location) or "request"
        wording = _ERROR_WORDING.get(detail.get("type", ""))
        try:
            message = wording.format(**detail.get("ctx", {})) if wording else detail.get("msg", "is invalid")
        except (KeyError, IndexError):
            message = detail.get("msg", "is invalid")
        sentences.append(f"{field} {message}")
    return "; ".join(sentences) or "the request is invalid"
