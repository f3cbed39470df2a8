"""Evaluation: pure metrics of paired images (`metrics`), scoring against
the identity and histogram-matching baselines (`scoring`), latent-sample
uncertainty (`uncertainty`), the part that reads a dataset's test pairs and
runs generators on them (`paired_test_set`), the HTML report with its figures
(`report`, `figures`); and the radiotherapy view of a synthetic CT in
Hounsfield units: SynthRAD's image metrics (`synthrad`) inside a body mask
(`body_mask`), errors per tissue and bone geometry (`tissue`),
water-equivalent path length differences along beam angles (`wepl`), and
gamma pass rates, SynthRAD's dose MAE and dose-grid readers (`dose`); the
cases of `vaecyclegan-eval` read in HU with their spacing and paired by
name (`cases`), scored one by one and gathered into the `"synthrad"`
section of `metrics.json` (`case_scoring`), and SynthRAD's folder layout
with its MRIs translated (`synthrad_layout`)."""
