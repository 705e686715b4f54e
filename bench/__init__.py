"""Benchmarks: each module's main() prints one markdown section; `python -m bench` collects them."""
