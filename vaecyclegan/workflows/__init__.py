"""What the commands do, called with typed settings (`settings`:
`TrainSettings`, `InferSettings`, `EvalSettings`) and never with command
-line namespaces: a training run (`train`, with its data in
`training_data`, its folder in `run_folder`, and what a resumed run must
keep in `resume_checks`), translation of files
(`infer`, writing through `output_staging`), and evaluation (`evaluate`).
"""
