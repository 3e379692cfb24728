"""Submissions in: finding notebooks and reading them as untrusted files, outputs cleared."""
