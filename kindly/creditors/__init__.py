"""Creditors as records: who is owed, with their address, contact, bank account and brand."""
