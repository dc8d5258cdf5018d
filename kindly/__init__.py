"""Kindly: a self-hostable engine for soft debt collection."""

__version__ = "0.1.0"
