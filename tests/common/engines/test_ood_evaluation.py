from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from monai.data import MetaTensor

from common.engines import (
    ENSEMBLE_SPACE,
    OOD_METHODS,
    ExitsInferer,
    OODEvaluationReport,
    OODInferenceWriter,
    fit_ood_thresholds,
    load_ensemble,
    method_id_scores,
    ood_flags,
    sample_member_hyperparameters,
    score_datalist,
    train_ensemble,
    write_ood_thresholds,
)
from common.networks import EarlyExitCNN, MultiExitLoss

SIZE = 48


def _net(exits=(2, 3)):
    return EarlyExitCNN(spatial_size=SIZE, channels=(2, 2, 4, 4, 4), fc_units=8, exit_channels=4, exit_after=exits,
                        padding="same")  # fmt: skip


def _items(n: int, seed: int, shift: float = 0.0, labelled: bool = True):
    g = torch.Generator().manual_seed(seed)
    items = []
    for k in range(n):
        item = {"image": torch.rand(1, SIZE, SIZE, generator=g) + shift, "case": f"c{seed}_{k}"}
        if labelled:
            item["label"] = k % 3
        items.append(item)
    return items


def test_exits_inferer_returns_every_exit():
    assert ExitsInferer()(torch.rand(2, 1, SIZE, SIZE), _net()).shape == (2, 3, 3)


def test_exits_inferer_goes_through_the_ddp_wrapper(tmp_path: Path):
    """DDP averages gradients only for passes through its own forward: the inferer must not bypass the wrapper."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        torch.manual_seed(0)
        net = _net().eval()  # no dropout: the two passes must agree
        ddp = torch.nn.parallel.DistributedDataParallel(net)
        calls = []
        through = ddp.forward
        ddp.forward = lambda *a, **k: (calls.append(1), through(*a, **k))[1]
        x = torch.rand(2, 1, SIZE, SIZE)
        out = ExitsInferer()(x, ddp)
        assert calls == [1] and out.shape == (2, 3, 3)
        assert torch.allclose(out, net.forward_exits(x))
        out.sum().backward()
        assert all(p.grad is not None for p in net.parameters())
        assert "forward" not in vars(net), "the module's own forward must be restored"
        assert net(x).shape == (2, 3)
    finally:
        dist.destroy_process_group()


def test_member_hyperparameters_follow_table_2():
    rng = np.random.default_rng(0)
    draws = [sample_member_hyperparameters(rng) for _ in range(200)]
    assert all(0 <= d["left_out"] <= 0.15 for d in draws)
    assert all(1e-4 <= d["learning_rate"] <= 1e-3 for d in draws)
    assert {d["optimizer"] for d in draws} == set(ENSEMBLE_SPACE["optimizer"])
    assert {d["batch_size"] for d in draws} == set(ENSEMBLE_SPACE["batch_size"])
    assert min(d["epochs"] for d in draws) >= 25 and max(d["epochs"] for d in draws) <= 85
    assert all(1 <= sample_member_hyperparameters(rng, 0.01)["epochs"] <= 1 for _ in range(5))
    assert 1e-3 <= sample_member_hyperparameters(rng, lr_scale=10)["learning_rate"] <= 1e-2


def test_train_and_load_ensemble(tmp_path: Path):
    members = train_ensemble(lambda: _net(()), _items(9, 0), tmp_path / "ens", 2, MultiExitLoss(), epoch_scale=0.04)
    assert len(members) == 2 and members[0]["seed"] != members[1]["seed"]
    assert json.loads((tmp_path / "ens" / "members.json").read_text())[1]["member"] == 1
    loaded = load_ensemble(tmp_path / "ens", lambda: _net(()))
    assert len(loaded) == 2 and not loaded[0].training
    assert load_ensemble(tmp_path / "missing", lambda: _net(())) == []
    (tmp_path / "bare").mkdir()
    with pytest.raises(FileNotFoundError):
        load_ensemble(tmp_path / "bare", lambda: _net(()))
    with pytest.raises(ValueError):
        train_ensemble(lambda: _net(()), _items(3, 0), tmp_path / "x", 0, MultiExitLoss())


def test_train_ensemble_caps_batch_and_raises_epochs_to_min_steps(tmp_path: Path):
    members = train_ensemble(lambda: _net(()), _items(10, 0), tmp_path / "ens", 1, MultiExitLoss(), epoch_scale=0.01,
                             max_batch_size=4, min_steps=9)  # fmt: skip
    setup = members[0]
    assert setup["batch_size"] <= 4 and setup["epochs"] * math.ceil(setup["num_images"] / setup["batch_size"]) >= 9
    assert setup["drawn_epochs"] == 1


def test_ensemble_members_log_their_loss_once_per_epoch(tmp_path: Path, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="common.engines.ood_evaluation"):
        members = train_ensemble(lambda: _net(()), _items(6, 0), tmp_path / "ens", 1, MultiExitLoss(),
                                 epoch_scale=0.04, max_batch_size=4)  # fmt: skip
    epochs = members[0]["epochs"]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ensemble member 1/1: epoch")]
    assert [line.split(",")[0] for line in lines] == [f"ensemble member 1/1: epoch {e}/{epochs}" for e in
                                                      range(1, epochs + 1)]  # fmt: skip


class _Factory:
    """A member factory that can fail on its n-th call (an interrupted ensemble)."""

    def __init__(self, fail_at: int | None = None):
        self.fail_at, self.calls = fail_at, 0

    def __call__(self):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt("killed")
        return _net(())


def test_ensemble_rerun_reuses_a_finished_one_and_resumes_an_interrupted_one(tmp_path: Path):
    items, loss = _items(9, 0), MultiExitLoss()
    reference = train_ensemble(_Factory(), items, tmp_path / "ref", 3, loss, epoch_scale=0.04)
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ref").iterdir()}
    again = _Factory()
    assert train_ensemble(again, items, tmp_path / "ref", 3, loss, epoch_scale=0.04) == reference
    assert again.calls == 0 and stamps == {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ref").iterdir()}
    manifest = json.loads((tmp_path / "ref" / "ensemble_manifest.json").read_text())
    assert manifest["size"] == 3 and manifest["loss"]["class"] == "MultiExitLoss"

    with pytest.raises(KeyboardInterrupt):  # killed while training the third member
        train_ensemble(_Factory(fail_at=3), items, tmp_path / "ens", 3, loss, epoch_scale=0.04)
    assert not (tmp_path / "ens").exists() and len(list((tmp_path / ".ens.partial").glob("member_*.pt"))) == 2
    resumed = _Factory()
    assert train_ensemble(resumed, items, tmp_path / "ens", 3, loss, epoch_scale=0.04) == reference
    assert resumed.calls == 1, "only the missing member is trained"
    assert not (tmp_path / ".ens.partial").exists()
    for k in range(3):
        a, b = (torch.load(tmp_path / d / f"member_{k:02d}.pt", weights_only=True) for d in ("ref", "ens"))
        assert all(torch.equal(a[n], b[n]) for n in a), "a resumed ensemble equals an uninterrupted one"

    other = _Factory()  # another request (size) trains afresh
    assert len(train_ensemble(other, items, tmp_path / "ens", 2, loss, epoch_scale=0.04)) == 2 and other.calls == 2
    with pytest.raises(FileExistsError):
        train_ensemble(_Factory(), items, tmp_path / "ens", 1, loss, epoch_scale=0.04, overwrite=False)


def test_thresholds_are_refitted_only_when_their_inputs_change(tmp_path: Path):
    torch.manual_seed(0)
    net = _net()
    torch.save(net.state_dict(), tmp_path / "model.pt")
    calibration = [{"image": f"img{k}.png", "label": k % 3} for k in range(12)]
    tensors = {i["image"]: x["image"] for i, x in zip(calibration, _items(12, 2))}

    def load(item):
        return {**item, "image": tensors[item["image"]]}

    def fit():
        path = write_ood_thresholds(tmp_path / "thr.json", net, tmp_path / "model.pt", calibration, load)
        return path.stat().st_mtime_ns, json.loads(path.read_text())

    first, saved = fit()
    assert saved["fitted_on"]["calibration"]["num_items"] == 12 and saved["fitted_on"]["ensemble_sha1"] is None
    assert fit()[0] == first, "same model and calibration images: the file is kept"
    torch.save(_net().state_dict(), tmp_path / "model.pt")  # a retrained model
    changed, refitted = fit()
    assert changed != first and refitted["fitted_on"]["model_sha1"] != saved["fitted_on"]["model_sha1"]


def test_ensemble_member_trained_on_the_sample_beats_chance(tmp_path: Path):
    """Regression test: plain members (no exits) used to stay at chance (loss ln 3) on the sample's short schedule.

    One member with the train.yaml sample settings (lr x3, batch <= 16, >= 80 optimiser steps) on a reduced sample
    at 96x96 (cheap); the test split is balanced, so chance is 1/3.
    """
    from monai.transforms import (
        Compose,
        EnsureChannelFirstd,
        EnsureTyped,
        LoadImaged,
        NormalizeIntensityd,
        Resized,
        ScaleIntensityRanged,
    )

    from common.data import busi_datalist, class_weights, write_busi_sample

    root = write_busi_sample(tmp_path / "sample", seed=0, us_per_class=20, pocus_train_per_class=8,
                             pocus_test_per_class=8, val_per_class=(1, 1), num_digits=1, num_carotid=1)  # fmt: skip
    size = 96
    transform = Compose([LoadImaged("image", image_only=True), EnsureChannelFirstd("image"),
                         Resized("image", (size, size), mode="area"), ScaleIntensityRanged("image", 0, 255, 0, 1),
                         NormalizeIntensityd("image"), EnsureTyped("image", track_meta=False)])  # fmt: skip
    train = [transform(dict(i)) for i in busi_datalist(root, "train")]
    test = [transform(dict(i)) for i in busi_datalist(root, "test")]

    def factory():
        return EarlyExitCNN(spatial_size=size, channels=(8, 16, 32, 32, 32), fc_units=64, exit_after=())

    loss = MultiExitLoss(class_weights=class_weights(train, 3))
    members = train_ensemble(factory, train, tmp_path / "ens", 1, loss, seed=0, epoch_scale=12 / 300, lr_scale=3,
                             max_batch_size=16, min_steps=80)  # fmt: skip
    net = load_ensemble(tmp_path / "ens", factory)[0]
    with torch.no_grad():
        pred = net(torch.stack([i["image"] for i in test])).argmax(-1)
    accuracy = (pred == torch.as_tensor([int(i["label"]) for i in test])).float().mean().item()
    assert members[0]["final_loss"] < 1.0  # ln 3 = 1.0986 is the chance-level plateau
    assert accuracy >= 0.5, f"member accuracy {accuracy:.2f} on the sample is at chance (1/3)"


def test_scores_thresholds_and_flags():
    torch.manual_seed(0)
    net, members = _net().eval(), [_net(()).eval() for _ in range(3)]
    scores = score_datalist(net, members, _items(20, 1), lambda d: d)
    assert scores["exit_logits"].shape == (20, 3, 3) and scores["energy"].shape == (20, 3)
    assert np.allclose(scores["probabilities"].sum(1), 1) and (scores["ensemble_variance"] >= 0).all()
    thresholds = fit_ood_thresholds(scores, keeps=(0.95, 0.8))
    assert set(thresholds["methods"]) == set(OOD_METHODS)
    for keep, expected in ((0.95, 19), (0.8, 16)):
        flags = ood_flags(scores, thresholds, keep)
        assert set(flags) == set(OOD_METHODS)
        for method in OOD_METHODS:  # on the calibration images themselves
            if method == "energy_multilevel":  # min over exits of CDF values j/n: ties keep a few more
                assert expected <= flags[method].sum() <= expected + 2
            else:
                assert flags[method].sum() == expected, method
    ids = method_id_scores(scores, rule=None)  # variances are negated so that higher always means in-distribution
    assert "energy_multilevel" not in ids and np.array_equal(ids["ensemble_variance"], -scores["ensemble_variance"])
    assert np.array_equal(ids["energy_exit2"], scores["energy"][:, 1])


def test_evaluation_report_and_thresholds_file(tmp_path: Path):
    torch.manual_seed(0)
    net = _net()
    torch.save(net.state_dict(), tmp_path / "model.pt")
    train_ensemble(lambda: _net(()), _items(6, 0), tmp_path / "ens", 2, MultiExitLoss(), epoch_scale=0.04)
    path = write_ood_thresholds(tmp_path / "thr.json", net, tmp_path / "model.pt", _items(12, 2), lambda d: d,
                                tmp_path / "ens", lambda: _net(()))  # fmt: skip
    saved = json.loads(path.read_text())
    assert saved["num_members"] == 2 and saved["temperature"] == 0.001
    report = OODEvaluationReport(
        net, _items(12, 3), _items(12, 2), {"far": _items(6, 4, shift=5.0, labelled=False)}, lambda d: d,
        tmp_path / "eval", ensemble_dir=tmp_path / "ens", member_factory=lambda: _net(()), num_bootstrap=20,
    ).compute()  # fmt: skip
    metrics = report["metrics"]
    assert metrics["trivial_macro_auc"] == 0.5 and metrics["trivial_accuracy"] == pytest.approx(1 / 3)
    for method in OOD_METHODS:
        row = report["ood"][method]["far"]
        assert 0 <= row["auroc_ci_low"] <= row["auroc"] <= row["auroc_ci_high"] <= 1
        assert metrics[f"{method}/far/fpr95"] == row["fpr95"]
        assert report["rejection"][method]["leave_out_0"]["kept"] == 12
    assert report["num_cases"] == 12 and len(report["cases"]) == 12 and report["num_ensemble_members"] == 2


def test_inference_writer(tmp_path: Path):
    torch.manual_seed(0)
    net = _net().eval()
    calibration = score_datalist(net, [], _items(10, 5), lambda d: d)
    (tmp_path / "thr.json").write_text(json.dumps({"temperature": 0.001, **fit_ood_thresholds(calibration)}))
    writer = OODInferenceWriter(net, tmp_path / "thr.json", tmp_path / "out", flag_method="msp", keep=0.8)
    images = [MetaTensor(torch.rand(1, SIZE, SIZE), meta={"filename_or_obj": f"/d/{c}/x.png"}) for c in ("a", "b")]
    writer(SimpleNamespace(state=SimpleNamespace(batch=[{"image": i} for i in images])))
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["a_x.json", "b_x.json"]
    record = json.loads((tmp_path / "out" / "a_x.json").read_text())
    assert record["flag_method"] == "msp" and isinstance(record["in_distribution"], bool)
    assert sum(record["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    with pytest.raises(ValueError, match="flag_method"):
        OODInferenceWriter(net, tmp_path / "thr.json", tmp_path / "out", flag_method="entropy")
    with pytest.raises(FileNotFoundError, match="thresholds"):
        OODInferenceWriter(net, tmp_path / "none.json", tmp_path / "out")._load()
    with pytest.raises(ValueError, match="ensemble_variance"):
        OODInferenceWriter(net, tmp_path / "thr.json", tmp_path / "out", flag_method="ensemble_variance")._load()
