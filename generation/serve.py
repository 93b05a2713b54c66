"""`python -m generation.serve [--host H] [--port P]`: the HTTP inference service.

Loads each generator's champion from DATA_DIR/models once (CUDA when present), warms it up, and
serves /v1/image, /v1/text, /v1/models, /v1/reload, /healthz and /readyz with dynamic
micro-batching (generation.service). Why FastAPI + uvicorn, and why one process: see
generation/service/app.py.
"""

from __future__ import annotations

import argparse
import logging

import uvicorn

from generation.service.app import create_app
from generation.service.engine import resolve_device
from generation.settings import GenerationSettings


def parse_args(argv: list[str] | None, settings: GenerationSettings) -> argparse.Namespace:
    """Command-line options; defaults come from GENERATION_HOST / GENERATION_PORT."""
    parser = argparse.ArgumentParser(
        prog="python -m generation.serve",
        description="HTTP inference service for the image and text generators.",
    )
    parser.add_argument(
        "--host", default=settings.generation_host, help="listen address (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=settings.generation_port, help="port (default: %(default)s)"
    )
    parser.add_argument(
        "--access-log", action="store_true", help="log every request (off: it costs throughput)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Read settings once, then run uvicorn until SIGINT/SIGTERM (in-flight requests finish)."""
    settings = GenerationSettings.load()
    args = parse_args(argv, settings)
    try:  # fail at once, in one line, rather than in the middle of the server's start-up
        resolve_device(settings.generation_device, settings.generation_threads)
    except ValueError as exc:
        raise SystemExit(f"Bad setting GENERATION_DEVICE: {exc}") from None
    level = settings.log_level.upper()
    if level not in ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"):
        raise SystemExit(f"Bad setting LOG_LEVEL: {settings.log_level!r} is not a log level")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not settings.token and args.host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger(__name__).warning(
            "GENERATION_TOKEN is not set: anyone who can reach %s may call the service", args.host
        )
    # One process (batching needs one queue per model), no access log; uvicorn's default "auto"
    # HTTP parser and loop use httptools/uvloop when installed (no measurable gain here: a request's
    # time goes to the model and the PNG, not to HTTP parsing).
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level=settings.log_level.lower(),
        access_log=args.access_log,
        timeout_graceful_shutdown=int(settings.generation_timeout_s) + 1,
    )


if __name__ == "__main__":
    main()
