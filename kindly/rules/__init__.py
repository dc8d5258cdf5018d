"""Campaign rules: the document (document, validate), applying it (history, evaluate, store),
and experiments (stats: pure; experiments: outcomes read from the database)."""
