"""The report page: readable without seeing its pictures or telling their
colours apart (a screen reader, colour blindness), and honest about what it
shows (how many cases a figure has, what a 2-D "SynthRAD" number is)."""

import collections
import html.parser

import numpy as np
import pytest

from vaecyclegan.config import IntensityConfig
from vaecyclegan.evaluation.report import write_report
from vaecyclegan.evaluation.scoring import (
    DEFAULT_CT_WINDOW_HU,
    ScanPair,
    evaluate_scans,
    pooled_pixels,
)
from vaecyclegan.io.image_format import image_scan

CASES = 5
# The colours each figure draws, by what its alt text starts with: its
# caption has to name them all.
FIGURE_COLOURS = {
    "Comparison grid": {"red", "blue", "white", "green", "magenta"},
    "SynthRAD view": {"red", "blue", "white", "green", "magenta", "black", "orange",
                      "dark grey", "dotted", "dashed"},
    "Training loss curves": {"faint", "bold"},
}


class _Page(html.parser.HTMLParser):
    """The page's images (with the figure around them), figures (alt texts
    and caption) and tables (caption and header cells)."""

    def __init__(self):
        super().__init__()
        self.open, self.images, self.figures, self.tables = [], [], [], []
        self._text = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append({**attrs, "in_figure": "figure" in self.open})
            if self.figures and "figure" in self.open:
                self.figures[-1]["alts"].append(attrs.get("alt", ""))
            return
        self.open.append(tag)
        if tag == "figure":
            self.figures.append({"alts": [], "caption": None})
        elif tag == "table":
            self.tables.append({"caption": None, "headers": []})
        elif tag in ("figcaption", "caption", "th"):
            self._text = {"tag": tag, "attrs": attrs, "text": ""}

    def handle_data(self, data):
        if self._text is not None:
            self._text["text"] += data

    def handle_endtag(self, tag):
        if self._text is not None and self._text["tag"] == tag:
            text, self._text = self._text, None
            if tag == "figcaption":
                self.figures[-1]["caption"] = text["text"]
            elif tag == "caption":
                self.tables[-1]["caption"] = text["text"]
            else:
                self.tables[-1]["headers"].append((text["attrs"], text["text"].strip()))
        while self.open and self.open.pop() != tag:
            pass


def _hu_slices(count):
    """2-D CT slices in HU: soft tissue with a bone ring, in air."""
    references = []
    for index in range(count):
        image = np.full((32, 32), -1000.0)
        image[4:28, 4:28] = 40.0
        image[10 + index % 3:22, 10:22] = 900.0
        image[13 + index % 3:19, 13:19] = 40.0
        references.append(image)
    return references


def _ct_evaluation(count=CASES):
    """An mri2ct evaluation with 8-bit scores, tissue, bone overlap and
    SynthRAD metrics of 2-D slices (1 mm pixels, `score_slices`), scored as
    `infer.py --reference` scores: 8-bit windowed references with their
    HU copies."""
    low, high = DEFAULT_CT_WINDOW_HU
    intensity = IntensityConfig(ct_window_hu=DEFAULT_CT_WINDOW_HU)
    references_hu = _hu_slices(count)
    references = [np.round((r - low) / (high - low) * 255).astype(np.uint8)
                  for r in references_hu]
    pairs = []
    for index, (reference, hu) in enumerate(zip(references, references_hu)):
        prediction = np.clip(reference.astype(int) + 6, 0, 255).astype(np.float32)
        pairs.append(ScanPair(f"{index}.png", image_scan(np.roll(reference, 3, axis=1), "a", "mri"),
                              prediction[None] / 127.5 - 1.0, None,
                              image_scan(reference, "a", "ct"), hu))
    return evaluate_scans("mri2ct", pairs, pooled_pixels(references), intensity)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The parsed page of a report whose figures show fewer cases than it has,
    and its text."""
    folder = tmp_path_factory.mktemp("report")
    losses = folder / "losses.csv"
    losses.write_text("step,seconds,g_loss,d_loss\n1,0.1,3.0,0.5\n2,0.2,2.5,0.4\n")
    written = write_report(str(folder / "out"), [_ct_evaluation()], "report",
                           loss_csvs=[("translate", str(losses))], grid_rows=2,
                           synthrad_rows=3)
    with open(written["html"], encoding="utf-8") as f:
        text = f.read()
    parsed = _Page()
    parsed.feed(text)
    return parsed, text


def test_every_image_is_a_figure_whose_caption_names_its_colours(page):
    parsed, _ = page
    assert len(parsed.images) == 3 and all(image["in_figure"] for image in parsed.images)
    for figure in parsed.figures:
        (alt,) = figure["alts"]
        kind = next(k for k in FIGURE_COLOURS if alt.startswith(k))
        caption = figure["caption"].lower()
        assert caption, alt
        missing = {colour for colour in FIGURE_COLOURS[kind] if colour not in caption}
        assert not missing, (kind, missing)


def test_the_alt_texts_say_what_the_rows_and_columns_show(page):
    parsed, _ = page
    alts = {image["alt"].split(",")[0]: image["alt"] for image in parsed.images}
    assert "one row per test image" in alts["Comparison grid"]
    assert "reference (W 3000 / L 500 HU)" in alts["Comparison grid"]
    assert "bone overlap" in alts["Comparison grid"]
    assert "one row per case" in alts["SynthRAD view"]
    assert "sCT - CT HU" in alts["SynthRAD view"]
    assert "g_loss" in alts["Training loss curves"]


def test_a_figure_cut_short_says_how_many_it_shows_of_how_many(page):
    # The grid drew 2 images and the SynthRAD view 3 cases of 5; the page did
    # not say so.
    captions = [figure["caption"] for figure in page[0].figures]
    assert sum(f"images 1\u20132 of {CASES}" in c for c in captions) == 1
    assert sum(f"cases 1\u20133 of {CASES}" in c for c in captions) == 1


def test_a_figure_with_every_case_says_all(tmp_path):
    written = write_report(str(tmp_path), [_ct_evaluation(2)], "report")
    parsed = _Page()
    with open(written["html"], encoding="utf-8") as f:
        parsed.feed(f.read())
    captions = [figure["caption"] for figure in parsed.figures]
    assert any("all 2 images" in c for c in captions)
    assert any("all 2 cases" in c for c in captions)
    assert not any(" of 2" in c for c in captions)


def test_every_table_has_a_caption_headers_with_scope_and_unique_column_names(page):
    parsed, _ = page
    assert len(parsed.tables) == 3  # 8-bit scores, per tissue, SynthRAD
    for table in parsed.tables:
        assert table["caption"] and "mri2ct" in table["caption"]
        assert all(attrs.get("scope") in ("col", "colgroup", "row")
                   for attrs, _ in table["headers"])
        columns = [text for attrs, text in table["headers"] if attrs.get("scope") == "col"]
        repeated = [t for t, n in collections.Counter(columns).items() if n > 1]
        assert not repeated, repeated  # "PSNR dB" and "air" were there twice
        rows = [text for attrs, text in table["headers"] if attrs.get("scope") == "row"]
        assert rows  # each method or case heads its row


def test_the_synthrad_table_names_the_challenge_in_each_column(page):
    parsed, _ = page
    columns = [text for attrs, text in parsed.tables[-1]["headers"]
               if attrs.get("scope") == "col"]
    assert {"PSNR 2023 dB", "PSNR 2025 dB", "MAE air", "ME air"} <= set(columns)


def test_2d_synthrad_numbers_are_labelled_per_slice_means_of_1mm_pixels(page):
    # score_slices scores each slice with 1 mm pixels: its mean is not a
    # volume's SynthRAD score, and "SynthRAD metrics in HU" alone read as one.
    _, text = page
    label = f"per-slice mean over {CASES} 2-D image(s), 1 mm pixels"
    assert f"<h3>SynthRAD metrics in HU, {label}</h3>" in text
    assert label in page[0].tables[-1]["caption"]
