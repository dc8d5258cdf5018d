"""Pure renderers: a DebtorView in, bytes or one file out. No database, Flask, RQ or S3 here."""
