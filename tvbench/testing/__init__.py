"""Tiny, randomly initialised models and fake servers for tests and benchmarks (never for reported numbers)."""
