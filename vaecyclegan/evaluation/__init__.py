"""Evaluation: pure metrics of paired images (`metrics`), scoring against
the identity and histogram-matching baselines (`scoring`), latent-sample
uncertainty (`uncertainty`), the part that reads a dataset's test pairs and
runs generators on them (`test_pairs`), and the HTML report with its
figures (`report`, `figures`)."""
