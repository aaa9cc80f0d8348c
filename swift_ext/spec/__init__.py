"""The recipe as written: its typed model, YAML with positions, the finding type, secrets and GPU facts."""
