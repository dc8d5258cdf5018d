"""The domain: no Flask and no RQ in here."""
