"""Demo data and generated history for demos, tests and benchmarks."""
