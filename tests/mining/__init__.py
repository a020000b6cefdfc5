"""Tests of graphrec.mining (a package so its conftest and helpers have unique module names)."""
