"""Helpers the tests share (imported, never collected)."""
