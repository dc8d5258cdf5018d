"""Overpayments handed back: refunds computed from the ledger, approved by a manager, paid out
through a SEPA credit-transfer file (pain.001) and booked as negative payments, each once."""
