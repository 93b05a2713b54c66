"""Suite-wide defaults: no test may start the first-start background training by accident, and the
generators start with no champion unless a test brings one (tests of the shipped defaults name them)."""

import os

# Read by BotSettings for every bot the tests build (in-process or as a subprocess).
os.environ["TRAIN_MISSING_MODELS"] = "0"
os.environ["SHIPPED_MODELS_DIR"] = ""
