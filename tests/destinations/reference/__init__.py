"""Frozen copies of the destination modules as they were before the compiled mapping / payload-check fast paths
(commit 3df274e), kept as the reference interpretation for tests/destinations/test_compiled_differential.py.

Do not edit: they are the behaviour the optimised modules must reproduce byte for byte.
"""
