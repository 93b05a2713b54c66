# syntax=docker/dockerfile:1
# Two targets from one pyproject:
#   docker build --target bot -t startup-guide-bot .                 (CPU; runs the Telegram bot)
#   docker build --target generation-service -t startup-guide-gen .  (CUDA torch; run on a GPU host)
# Data (index, models, SQLite) and the model cache live in volumes, so rebuilding the image keeps them.

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DATA_DIR=/data \
    HF_HOME=/cache/huggingface
RUN useradd --create-home --uid 10001 app \
    && mkdir -p /data /cache \
    && chown app:app /data /cache
WORKDIR /app

FROM base AS source
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY knowledge ./knowledge
COPY generation ./generation

FROM source AS bot
# The CPU wheel keeps the image small; the bot needs no GPU.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install torch==2.13.0 --index-url "${TORCH_INDEX_URL}" && pip install .
USER app
VOLUME ["/data", "/cache"]
CMD ["python", "-m", "bot", "run"]

FROM source AS generation-service
# PyPI's torch 2.13.0 for Linux x86_64 is the CUDA build: run with `docker run --gpus all`.
RUN pip install torch==2.13.0 && pip install .
USER app
VOLUME ["/data", "/cache"]
EXPOSE 8000
CMD ["python", "-m", "generation.serve", "--host", "0.0.0.0", "--port", "8000"]
