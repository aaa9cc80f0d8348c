"""The command line: presentation only; every verb consumes a Plan or a RunDir."""
