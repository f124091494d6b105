"""Reading probabilities, labels and source names off classification engine outputs."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from common.engines import (
    PerCaseWriter,
    ProbabilityCollector,
    batch_images,
    output_labels,
    output_probabilities,
    source_names,
)


def test_collated_and_decollated_outputs_give_the_same_values():
    collated = {"pred": torch.tensor([[0.2, 0.8], [0.6, 0.4]]), "label": torch.tensor([[0.0, 1.0], [1.0, 0.0]])}
    decollated = [
        {"pred": torch.tensor([0.2, 0.8]), "label": torch.tensor(1)},
        {"pred": torch.tensor([0.6, 0.4]), "label": torch.tensor([0])},
    ]
    for output in (collated, decollated):
        assert np.allclose(np.stack(output_probabilities(output)), [[0.2, 0.8], [0.6, 0.4]])
        assert output_labels(output) == [1, 0]
    batch = {"image": MetaTensor(torch.zeros(2, 1), meta={"filename_or_obj": ["/a/x.png", "/a/y.png"]})}
    assert source_names(batch, 2) == ["/a/x.png", "/a/y.png"]
    assert source_names([{"image": torch.zeros(1)}], 1) == ["region_0"]


def test_collector_gathers_an_epoch_and_leaves_the_report_to_subclasses():
    collector = ProbabilityCollector()
    output = [{"pred": torch.tensor([0.3, 0.7]), "label": torch.tensor(1)}]
    engine = SimpleNamespace(state=SimpleNamespace(output=output, batch=[{"image": torch.zeros(1)}]))
    collector._collect(engine)
    collector._collect(engine)
    assert len(collector.probs) == 2 and collector.labels == [1, 1] and len(collector.cases) == 2
    collector._reset()
    assert collector.probs == [] and collector.labels == []
    with pytest.raises(NotImplementedError):
        collector(engine)


def test_batch_images_of_collated_and_decollated_batches():
    images = torch.arange(8.0).reshape(2, 1, 2, 2)
    assert torch.equal(batch_images({"image": images}), images)
    assert torch.equal(batch_images([{"x": images[0]}, {"x": images[1]}], key="x"), images)


class _NameWriter(PerCaseWriter):
    def records(self, engine):
        for name in engine.state.batch:
            yield name, {"image": name}


@pytest.mark.parametrize(
    "parent_in_name, expected",
    [(True, ["benign_a.b.json", "sec1_roi.json"]), (False, ["a.b.json", "roi.json"])],
)  # fmt: skip
def test_per_case_writer_names_files_after_their_source(tmp_path: Path, parent_in_name: bool, expected: list):
    writer = _NameWriter(tmp_path / "out", ["x"], parent_in_name=parent_in_name)
    assert writer.case_stem("/d/sec1/roi.nii.gz") == ("sec1_roi" if parent_in_name else "roi")
    writer(SimpleNamespace(state=SimpleNamespace(batch=["/d/benign/a.b.png", "/d/sec1/roi.nii.gz"])))
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == expected
    assert json.loads((tmp_path / "out" / expected[0]).read_text())["image"] == "/d/benign/a.b.png"
