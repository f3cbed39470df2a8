"""Datasets: the Kaggle layout and its domain folders (`dataset_layout`),
the Kaggle download with safe extraction (`kaggle`), the procedural head
phantom (`phantom`), the realistic head renderer for development sets
(`realistic_head`), and a domain folder read as training slices
(`domain_slices`)."""
