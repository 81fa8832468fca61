"""Benchmarks, run by hand; each prints ratios against a bare aiohttp loop measured in the same run."""
