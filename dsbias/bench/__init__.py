"""Benchmarks (``tools/bench_*.py``), not tests: one timer and one machine line (:mod:`.timer`), the engine
against a bare loop (:mod:`.engine`), the data loader (:mod:`.loader`) and the probes (:mod:`.probes`)."""
