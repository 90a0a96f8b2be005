"""Benchmarks: scripts that start the local world and print figures (``make bench``).

They are not tests: nothing here asserts a target; docs/benchmarks.md records the figures.
"""
