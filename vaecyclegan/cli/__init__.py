"""The command lines: argument parsers that build the workflows' typed
settings (`train`, `infer`, `evaluate`, `data`, `convert`), and what they
share (`common`: options printed, logging, one-line errors)."""
