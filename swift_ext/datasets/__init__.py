"""Datasets as ms-swift reads them: file reading, row rules, duplicates, template lengths and media tokens."""
