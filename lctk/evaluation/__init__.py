"""Evaluation on the user's own data: long-context tasks from any text, ranking and retention metrics."""
