"""Bank statements read into one shape: camt.053/.054, MT940 and mapped CSV to `Entry` rows.

Pure parsing: no database, no Flask. `detect.parse` is the entry point; `rf` makes and finds
ISO 11649 creditor references.
"""
