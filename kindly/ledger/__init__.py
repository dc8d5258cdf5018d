"""The creditor's books: payments made elsewhere and the ledger export."""
