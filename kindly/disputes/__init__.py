"""Disputes with documents: a debtor contests a claim with a reason, a text and files; the
case is held until a manager upholds (corrects or closes the claim) or rejects it."""
