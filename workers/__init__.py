"""RQ glue: queues, jobs that take ids, and the in-process fallback."""
