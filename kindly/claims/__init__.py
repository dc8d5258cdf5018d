"""Claims as collectors keep them: items, interest, costs, offers and write-offs.

`amount.amounts_on` is the one answer to "what does this debtor owe on this day"; the other
modules each add their own term to it.
"""
