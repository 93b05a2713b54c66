"""A stand-in for `python -m generation.train KIND --progress-json ...` with the same output protocol.

FAKE_TRAINER_MODE picks the behaviour: ok (progress lines, then the JSON report), fail (an error on
stderr, exit 3), slow (progress, then runs until stopped), stubborn (ignores SIGTERM). FAKE_TRAINER_STEPS
and FAKE_TRAINER_STEP_S set the pace. `KIND --cleanup` appends KIND to DATA_DIR/cleanup.log.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path


def main() -> int:
    kind, args = sys.argv[1], sys.argv[2:]
    data_dir = Path(os.environ["DATA_DIR"])
    if "--cleanup" in args:
        with (data_dir / "cleanup.log").open("a") as log:
            log.write(kind + "\n")
        print(json.dumps({"event": "cleanup", "kind": kind, "removed": []}))
        return 0
    (data_dir / f"argv-{kind}.json").write_text(json.dumps(args))
    mode = os.environ.get("FAKE_TRAINER_MODE", "ok")
    steps = int(os.environ.get("FAKE_TRAINER_STEPS", "5"))
    pause = float(os.environ.get("FAKE_TRAINER_STEP_S", "0.02"))
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("not json: a stray log line on stdout", flush=True)
    for step in range(1, steps + 1):
        time.sleep(pause)
        progress = {
            "event": "progress",
            "kind": kind,
            "phase": "train",
            "step": step,
            "total_steps": steps,
            "loss": 1.0 / step,
            "elapsed_s": step * pause,
            "eta_s": (steps - step) * pause,
        }
        print(json.dumps(progress), flush=True)
    if mode == "fail":
        print("Traceback (most recent call last):\nValueError: the data folder is empty", file=sys.stderr)
        return 3
    if mode in ("slow", "stubborn"):
        while True:
            time.sleep(0.05)
    promoted = os.environ.get("FAKE_TRAINER_PROMOTE", "1") == "1"
    report = {
        "event": "report",
        "kind": kind,
        "version": f"{kind}-v2",
        "promoted": promoted,
        "reason": "candidate beats the champion" if promoted else "candidate does not beat the champion",
        "candidate": {"bpc": 2.5},
        "champion": {"version": f"{kind}-v1", "metrics": {"bpc": 3.0}},
        "seconds": 0.1,
    }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
