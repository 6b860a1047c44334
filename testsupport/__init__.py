"""Test support shared by `tests/` and `benchmarks/`: the Kubernetes API emulator and its HTTP
client, the operator running in a thread, real Git repositories and servers on 127.0.0.1.

Not installed (like `tests` and `benchmarks`, it is imported from the repository root). It may
import `controller`, never `tests`; `controller` never imports it (tests/test_layering.py).
"""
