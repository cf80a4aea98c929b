"""Benchmarks and load tools (see README.md here); run each as ``python -m bench.<tool>``."""
