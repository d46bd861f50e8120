"""Parity machinery shared by ``polyloss parity`` and the test suite."""
