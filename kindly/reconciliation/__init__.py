"""Bank statements booked against cases: the import, matching that names its rule, exactly-once
booking of bank payments, returns, and the review queue a manager works through.

`kindly.bank` reads the files (pure); this package keeps what was read and books it.
"""
