"""Benchmark scripts: each prints its figures beside its targets and exits non-zero below target."""
