"""After training: merge, verify, infer, report."""
