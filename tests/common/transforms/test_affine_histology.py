from __future__ import annotations

import json

import numpy as np
import torch
from monai.data import MetaTensor
from PIL import Image

from common.data import write_landmarks
from common.transforms import (
    AffineToOriginald,
    HistologyCanvasd,
    LoadLandmarksd,
    SaveAffineOutputsd,
    affine_to_3x3,
    canvas_scale_matrix,
    checkerboard,
    pair_stem,
    rotation90_affine,
    to_grey_canvas,
    warp_affine,
)


def test_rotation90_matches_torch_rot90():
    img = torch.arange(12.0).view(3, 4)
    for k in range(4):
        m = rotation90_affine(k, 3, 4)
        rotated = torch.rot90(img, k, dims=(0, 1))
        for y in range(3):
            for x in range(4):
                xr, yr = (m @ [x, y, 1])[:2].round().astype(int)
                assert rotated[yr, xr] == img[y, x]


def test_warp_affine_translation_and_3x3():
    img = torch.zeros(1, 1, 10, 10)
    img[0, 0, 2, 3] = 1.0
    out = warp_affine(img, torch.tensor([[1.0, 0, 2.0, 0, 1.0, 1.0]]))  # source (3, 2) -> target (5, 3)
    assert torch.isclose(out[0, 0, 3, 5], torch.tensor(1.0), atol=1e-4) and torch.isclose(out.sum(), torch.tensor(1.0))
    assert affine_to_3x3([1, 0, 2, 0, 1, 1]).shape == (3, 3)


def test_canvas_and_scale():
    rgb = torch.full((3, 20, 40), 255.0)
    rgb[:, 5:10, 10:20] = 0.0
    canvas, scale = to_grey_canvas(rgb, 16)
    assert canvas.shape == (1, 16, 16) and canvas[:, 8:, :].sum() == 0  # bottom padding
    assert canvas.max() > 0.8 and canvas[:, 0, :].max() < 0.01  # tissue bright, glass dark after inversion
    assert np.allclose(canvas_scale_matrix((20, 40), (8, 16)) @ [39.5, 19.5, 1], [15.5, 7.5, 1])
    d = HistologyCanvasd(keys=["image"], size=16, keep_original=True)({"image": MetaTensor(rgb)})
    assert d["image"].shape == (1, 16, 16) and d["image_original"].shape == (3, 20, 40)
    assert d["image_size"].tolist() == [20, 40]


def test_affine_to_original_maps_landmarks_and_names_the_pair():
    scale = torch.as_tensor(canvas_scale_matrix((100, 100), (50, 50)))
    d = {"pred": torch.tensor([1.0, 0, 5.0, 0, 1.0, 0]), "image_canvas": scale, "fixed_canvas": scale,
         "moving_landmarks": torch.tensor([[10.0, 10.0]]),
         "moving": MetaTensor(torch.zeros(1), meta={"filename_or_obj": "/d/set_1/scale-5pc/a.png"}),
         "fixed": MetaTensor(torch.zeros(1), meta={"filename_or_obj": "/d/set_1/scale-5pc/b.png"})}  # fmt: skip
    out = AffineToOriginald(keys="pred")(d)
    assert np.allclose(out["warped_landmarks"].numpy(), [[20.0, 10.0]])  # 5 canvas pixels = 10 original pixels
    assert out["pred"].meta["filename_or_obj"] == "set_1_a_to_b" == pair_stem("/d/set_1/scale-5pc/a.png", "b.png")


def test_save_outputs_and_load_landmarks(tmp_path):
    write_landmarks(tmp_path / "l.csv", [[1.0, 2.0]])
    assert LoadLandmarksd()({"moving_landmarks": str(tmp_path / "l.csv")})["moving_landmarks"].shape == (1, 2)
    rgb = torch.randint(0, 255, (3, 12, 16)).float()
    d = {"affine": torch.eye(3, dtype=torch.float64), "image_original": rgb, "fixed_original": rgb,
         "warped_landmarks": torch.tensor([[1.0, 2.0]]),
         "moving": MetaTensor(torch.zeros(1), meta={"filename_or_obj": "x/s.png"}),
         "fixed": MetaTensor(torch.zeros(1), meta={"filename_or_obj": "x/t.png"})}  # fmt: skip
    SaveAffineOutputsd(output_dir=str(tmp_path / "o"))(d)
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert names == [f"x_s_to_t_{n}" for n in ("affine.json", "checkerboard.png", "landmarks.csv", "warped.png")]
    warped = np.asarray(Image.open(tmp_path / "o" / "x_s_to_t_warped.png"))
    assert np.abs(warped.astype(float) - rgb.permute(1, 2, 0).numpy()).max() <= 1.0  # identity keeps the image
    assert json.loads((tmp_path / "o" / "x_s_to_t_affine.json").read_text())["source_to_target"][0] == [1.0, 0.0, 0.0]
    board = checkerboard(np.zeros((4, 4)), np.ones((4, 4)), tiles=2)
    assert board[0, 0] == 0 and board[0, 2] == 1
