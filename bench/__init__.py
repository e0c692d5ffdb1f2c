"""Benchmarks at clinic-network scale (`make bench`, never part of `make test`)."""
