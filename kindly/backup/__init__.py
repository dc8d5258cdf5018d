"""Backups that restore: the database dump and the stored objects Kindly cannot render again,
with a manifest of checksums that `restore` verifies before it writes anything."""
