"""A short CPU fit for every optimizer, scheduler (with and without warmup), clipping mode and precision."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import IMAGE_MODELS, QUICK, SYNTHETIC, compose_cfg, group_options
from hydra.utils import instantiate

from tunelab.train import train

# model=segrnn's 24-step segments do not tile the synthetic 8-step horizon
MODEL_EXTRA = {"segrnn": " model.net.seg_len=8 model.net.hidden_sizes=[32]"}
CASES = (
    [f"optimizer={o}" for o in group_options("optimizer")]
    + [f"scheduler={s}" for s in group_options("scheduler")]
    + [f"scheduler={s} scheduler.warmup=3" for s in group_options("scheduler")]
    + [f"clipping={c}" for c in group_options("clipping")]
    + [f"precision={p}" for p in group_options("precision")]
    + [f"model={m}{MODEL_EXTRA.get(m, '')}" for m in group_options("model") if m not in IMAGE_MODELS]
    + [f"logger={g}" for g in group_options("logger")]
    + [f"early_stopping={e}" for e in group_options("early_stopping")]
    # trainer=ddp re-launches the running script for rank 1, so it runs through train.py in test_ddp.py
    + [f"trainer={t}" for t in group_options("trainer") if t != "ddp" and (t != "gpu" or torch.cuda.is_available())]
    + [f"debug={d} trainer.max_epochs=2" for d in group_options("debug")]
    + ["data.features=M", "data.features=MS model.net.channel_independent=false", "loss=mae", "loss=huber"]
)


@pytest.mark.parametrize("case", CASES)
def test_short_fit(case, tmp_path):
    overrides = case.replace("loss=", "model.loss=").split()
    cfg = compose_cfg([*SYNTHETIC, *QUICK, "logger=csv", *overrides], tmp_path)
    metrics = train(cfg)
    if cfg.trainer.fast_dev_run:  # one batch of each stage, by design nothing is saved
        assert math.isfinite(metrics["test/mse"])
        return
    for key in ("val/loss", "val/mse", "val/mae", "test/mse", "test/mae", "test/mse_orig", "test/mae_orig"):
        assert math.isfinite(metrics[key]), (key, metrics)
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["status"] == "ok" and summary["metrics"] == metrics
    # baselines without parameters are scored without a fit, so they leave no checkpoint
    trains = cfg.model.net._target_ not in ("tunelab.models.Naive", "tunelab.models.SeasonalNaive")
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file() == trains


def test_clipping_reaches_the_trainer(tmp_path):
    cfg = compose_cfg(["clipping=value", "clipping.max=0.25"], tmp_path)
    assert cfg.trainer.gradient_clip_val == 0.25 and cfg.trainer.gradient_clip_algorithm == "value"


@pytest.mark.parametrize("clipping", ["none", "adaptive"])
def test_no_clipping_algorithm_means_no_clipping_whatever_the_threshold(clipping, tmp_path):
    """Lightning norm-clips when only gradient_clip_val is given, so a threshold must not reach it alone."""
    cfg = compose_cfg([*SYNTHETIC, f"clipping={clipping}", "clipping.max=0.001"], tmp_path)
    trainer = instantiate(cfg.trainer)
    assert trainer.gradient_clip_val is None and trainer.gradient_clip_algorithm is None


@pytest.mark.parametrize("name", ["etth1", "etth2", "csv"])
def test_short_fit_on_real_files(name, tmp_path, ett_dir):
    extra = [f"data.path={ett_dir / 'ETTh1.csv'}", "data.borders=[8640,11520,14400]"] if name == "csv" else []
    cfg = compose_cfg([f"data={name}", *extra, *QUICK, "logger=none", "data.seq_len=48", "data.horizon=24"], tmp_path)
    metrics = train(cfg)
    assert 0 < metrics["test/mse"] < 10 and metrics["test/mae_orig"] > 0
