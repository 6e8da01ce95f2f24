"""Whole runs against the provider emulator: a real browser, the Flask example, refresh-once
under stress, the benchmarks."""
