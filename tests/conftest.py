"""Suite-wide defaults: no test may start the first-start background training by accident."""

import os

# Read by BotSettings for every bot the tests build (in-process or as a subprocess).
os.environ["TRAIN_MISSING_MODELS"] = "0"
