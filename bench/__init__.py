"""Benchmark harness for Identity Broker's token path: ``bench/run`` or ``python -m bench``."""
