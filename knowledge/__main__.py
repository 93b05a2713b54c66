"""python -m knowledge build | ask | eval | train | train-intent | bench"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from knowledge.settings import KnowledgeSettings

DEV_SET = Path(__file__).parent / "eval" / "dev.jsonl"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m knowledge", description="Bilingual knowledge base.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("build", help="(re)build the index under DATA_DIR")
    ask = commands.add_parser("ask", help="answer a question ('-' reads questions from stdin, one a line)")
    ask.add_argument("question")
    ask.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    ask.add_argument("-k", type=int, default=5, help="number of sources (default 5)")
    evaluate = commands.add_parser("eval", help="score a question set (JSONL)")
    evaluate.add_argument("file", type=Path)
    evaluate.add_argument("-k", type=int, default=5)
    evaluate.add_argument("--misses", action="store_true", help="list questions not hit at rank 1")
    commands.add_parser("train", help="fit the ranker and answer models on the labelled question sets")
    intent = commands.add_parser(
        "train-intent", help="fine-tune the intent classifier; promote it if it beats the champion"
    )
    intent.add_argument(
        "--out", type=Path, help="folder for the candidate (default DATA_DIR/intent/candidate)"
    )
    intent.add_argument("--dry-run", action="store_true", help="train on a tiny sample in seconds")
    intent.add_argument("--epochs", type=int, help="override the recipe's epochs (0: an untrained head)")
    intent.add_argument("--seed", type=int, help="override the recipe's seed")
    intent.add_argument("--max-steps", type=int, help="stop each fit after this many optimiser steps")
    intent.add_argument(
        "--progress-json", action="store_true", help="JSON progress lines and a report line on stdout"
    )
    intent.add_argument(
        "--cleanup", action="store_true", help="only remove what a stopped run left half-written"
    )
    intent.add_argument(
        "--ship",
        action="store_true",
        help="also write the candidate, in half precision, as the shipped default",
    )
    bench = commands.add_parser("bench", help="measure ask latency against a bare query encoding")
    bench.add_argument("--file", type=Path, default=DEV_SET)
    args = parser.parse_args(argv)

    settings = KnowledgeSettings.load()
    logging.basicConfig(
        stream=sys.stderr, level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
    )
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its CPU-feature probing is noise
    if args.command == "ask" and args.k < 1:
        parser.error("-k must be at least 1")
    if args.command == "train-intent":
        return _train_intent(settings, args)

    from knowledge.service import KnowledgeBase

    kb = KnowledgeBase.from_settings(settings)
    try:
        if args.command == "build":
            report = kb.rebuild()
            print(
                f"built {report.documents} documents, {report.sections} sections, "
                f"{report.faq_entries} FAQ entries in {report.seconds:.1f} s -> {settings.index_dir}"
            )
            return 0
        if args.command == "train":
            return _train(kb)  # builds its own index, without the labelled questions
        kb.initialize()
        if args.command == "ask":
            return _ask(kb, args)
        if args.command == "eval":
            from knowledge.evaluate import evaluate as run_eval
            from knowledge.evaluate import read_questions, report

            try:
                questions = read_questions(args.file)
            except (OSError, ValueError) as exc:
                print(f"cannot read {args.file}: {exc}", file=sys.stderr)
                return 2
            scores = run_eval(kb.ask, questions, k=args.k)
            print(report(scores))
            if args.misses:
                print("\n".join(scores.misses))
            return 0
        if args.command == "bench":
            from knowledge.evaluate import read_questions
            from knowledge.speed import measure

            latency = measure(kb, [q.question for q in read_questions(args.file)])
            print(
                f"ask p50 {latency.ask_p50:.1f} ms, p99 {latency.ask_p99:.1f} ms; bare query encoding p50 "
                f"{latency.encode_p50:.1f} ms; ratio {latency.ratio:.2f} ({latency.asks} asks)"
            )
            return 0
    finally:
        kb.shutdown()
    return 1


def _train(kb) -> int:
    from knowledge.evaluate import labelled_questions
    from knowledge.learned import SHIPPED, save_policy
    from knowledge.train import train

    questions, counts = labelled_questions()
    policy = train(kb.training_retriever(), questions, counts)
    save_policy(policy)
    print(
        f"trained on {sum(counts.values())} questions {counts}; answer at p >= {policy.answer_at:.3f} -> {SHIPPED}"
    )
    return 0


def _train_intent(settings: KnowledgeSettings, args) -> int:
    from knowledge.intent_retrain import KIND, RetrainArgs, cleanup, retrain

    if args.cleanup:
        print(json.dumps({"event": "cleanup", "kind": KIND, "removed": cleanup(settings.data_dir)}))
        return 0
    for name in ("epochs", "seed", "max_steps"):
        value = getattr(args, name)
        if value is not None and value < 0:
            print(f"--{name.replace('_', '-')} must not be negative", file=sys.stderr)
            return 2
    options = RetrainArgs(
        out=args.out,
        dry_run=args.dry_run,
        epochs=args.epochs,
        seed=args.seed,
        max_steps=args.max_steps,
        ship=args.ship,
        progress_json=args.progress_json,
    )
    return retrain(settings.data_dir, settings.embedding_model, options)


def _ask(kb, args) -> int:
    if args.question != "-":
        return _print_answer(kb, args.question, args)
    for line in sys.stdin:
        if line.strip():
            _print_answer(kb, line.strip(), args)
            sys.stdout.flush()
    return 0


def _print_answer(kb, question: str, args) -> int:
    try:
        answer = kb.ask(question, k=args.k)
    except ValueError as exc:
        print(
            json.dumps({"question": question, "error": str(exc)}, ensure_ascii=False)
            if args.json
            else str(exc)
        )
        return 2
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False))
        return 0
    print(answer.text)
    if not answer.answered and answer.suggestions:
        from knowledge.answer import SUGGESTIONS_HEADING

        print(SUGGESTIONS_HEADING[answer.lang], *(f"  - {topic}" for topic in answer.suggestions), sep="\n")
    for number, source in enumerate(answer.sources, 1):
        print(f"  [{number}] {source.title} — {source.section} ({source.lang}, {source.score:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
