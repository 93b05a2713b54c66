"""First start: when a generator has no model yet, train its default recipe in the background.

Questions work at once; /image and /text say the generators are unavailable until their model is
trained, promoted and hot-swapped in. The jobs are ordinary training jobs (recorded in the store,
visible to admins, cancellable), run one after the other so they do not fight over the CPU.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.heap import settle_heap
from bot.jobs import Job, JobAlreadyRunning, JobManager, JobNotStarted, RetrainOptions
from generation.api import MODEL_KINDS as KINDS

if TYPE_CHECKING:
    from generation.client import GenerationClient

logger = logging.getLogger(__name__)


def missing_generators(generation: GenerationClient) -> list[str]:
    """Model kinds with nothing to serve, when the generators run in this process."""
    if generation.remote:
        return []
    return [kind for kind in KINDS if not generation.available_for(kind)]


async def train_missing(
    jobs: JobManager, generation: GenerationClient, kinds: list[str], queue: set[str] | None = None
) -> None:
    """Train each missing kind in turn with its default recipe; swap each in as it is promoted.

    `queue` holds the kinds still waiting for their turn, so the bot can tell users so."""
    queue = queue if queue is not None else set()
    queue.update(kinds)

    async def swap_in(job: Job) -> None:
        if job.report is not None and job.report.promoted:
            await generation.reload()
            settle_heap()
            logger.info("first-start %s model %s is serving", job.kind, job.report.version)
        else:
            logger.warning("first-start training of %s ended %s: %s", job.kind, job.status, job.error)

    for kind in kinds:
        try:
            job = await jobs.start(kind, RetrainOptions(), chat_id=None, user_id=None, on_finish=swap_in)
        except JobAlreadyRunning:
            continue
        except JobNotStarted:
            logger.exception("could not start first-start training of %s", kind)
            queue.clear()
            return
        finally:
            queue.discard(kind)
        logger.info("no %s model yet: training the default recipe in the background (job %s)", kind, job.id)
        await job.done.wait()
