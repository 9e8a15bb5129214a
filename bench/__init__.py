"""Benchmarks: ``make bench`` (see bench/RESULTS.md and DESIGN.md section 6)."""
