"""Benchmarks that run the real phonefleet stack on this machine and set each figure beside a
baseline measured in the same run: ``python -m bench`` (``--quick`` for a short smoke run).

Everything here is measurement code: it starts PostgreSQL databases, Redis databases, the api, the
dispatcher, hub workers and simulated phones, drives them, and writes a report. It never changes how
phonefleet works.
"""
