"""What a user inspects: TensorBoard event files and server, eval.py, gradient health, the Tuner."""

from __future__ import annotations

import json
import types
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import (
    CONF,
    QUICK,
    QUIET,
    SYNTHETIC,
    compose_cfg,
    event_dir,
    read_metrics,
    reproducible,
    run_app,
    run_dirs,
    run_train,
    tensorboard_server,
)
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from tunelab.cli import compose_train
from tunelab.train import train
from tunelab.training.callbacks.gradients import GradientMonitor


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """One short run with the default TensorBoard logger, shared by the tests below."""
    tmp = tmp_path_factory.mktemp("inspect")
    result = run_app([*SYNTHETIC, *QUICK, f"paths.log_dir={tmp / 'logs'}", "optimizer=adamw"], cwd=tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = run_dirs(tmp / "logs")
    return run_dir


def events(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(event_dir(run_dir)), size_guidance={"images": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_event_files_hold_curves_hparams_and_figures(trained_run):
    acc = events(trained_run)
    scalars = set(acc.Tags()["scalars"])
    assert {"train/loss", "val/loss", "val/mse", "test/mse", "test/mae_orig", "grad/norm"} <= scalars
    assert any(t.startswith("train/lr") for t in scalars) and any(t.startswith("grad/norm/net.") for t in scalars)
    assert "test/forecast" in acc.Tags()["images"]

    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["optimizer/lr"].number_value == pytest.approx(0.001)
    assert hparams["model/net/cell"].string_value == "lstm"
    assert hparams["model/net/hidden_sizes"].string_value == "[64]"  # lists flattened to a primitive
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    metric_tags = {m.name.tag for m in experiment.metric_infos}
    assert {"val/mse", "test/mse"} <= metric_tags and "hp_metric" not in metric_tags
    # the HPARAMS tab reads each metric's last scalar: the best checkpoint's score from metrics.json
    assert acc.Scalars("test/mse")[-1].value == pytest.approx(read_metrics(trained_run)["metrics"]["test/mse"])


def test_tensorboard_server_serves_the_scalars(trained_run):
    # a single run is named by its data and model and the overrides it was started with
    assert (
        event_dir(trained_run).name.startswith("synthetic-lstm,") and "optimizer=adamw" in event_dir(trained_run).name
    )
    with tensorboard_server(trained_run) as url:
        query = urllib.parse.urlencode({"tag": "val/mse", "run": f"tensorboard/{event_dir(trained_run).name}"})
        points = json.load(urllib.request.urlopen(f"{url}/data/plugin/scalars/scalars?{query}", timeout=30))
    assert len(points) >= 2 and all(len(p) == 3 for p in points)  # [wall time, step, value]
    assert points[-1][2] == pytest.approx(read_metrics(trained_run)["metrics"]["val/mse"], rel=1e-6)


def test_eval_reproduces_the_training_test_metrics_and_writes_forecasts(trained_run, tmp_path):
    summary = read_metrics(trained_run)
    result = run_app(
        [f"ckpt_path={summary['best_checkpoint']}", "predict=true", f"paths.log_dir={tmp_path}"],
        cwd=tmp_path,
        script="eval.py",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (eval_dir,) = run_dirs(tmp_path)
    evaluated = read_metrics(eval_dir)["metrics"]
    for key in ("test/mse", "test/mae", "test/mse_orig", "test/mae_orig"):
        assert evaluated[key] == pytest.approx(summary["metrics"][key], rel=1e-6)
    table = pd.read_csv(eval_dir / "predictions.csv", parse_dates=["time"])
    windows = (600 - 420 - 60) - 8 + 1  # the 20% test rows hold this many 8-step targets
    assert len(table) == windows * 8 and table["step"].max() == 8
    assert {"value_forecast", "value_actual"} <= set(table.columns)
    starts = table[table["step"] == 1]["time"]
    assert (starts.diff().dropna() == pd.Timedelta(hours=1)).all()  # stride-1 windows, hourly data
    scored = table[table["window"] < 3 * 32]  # debug=limit scores 3 test batches of 32; predict covers all
    assert ((scored["value_forecast"] - scored["value_actual"]) ** 2).mean() == pytest.approx(
        summary["metrics"]["test/mse_orig"], rel=1e-4
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [(["ckpt_path=nowhere.ckpt"], "no checkpoint file"), (["ckpt_path=stray.ckpt"], "not inside a tunelab run")],
)
def test_eval_bad_checkpoint_path(tmp_path, args, message):
    (tmp_path / "stray.ckpt").write_bytes(b"not a checkpoint")
    result = run_train([*args, f"paths.log_dir={tmp_path / 'logs'}"], cwd=tmp_path, script="eval.py")
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr


def step_with_grads(monitor: GradientMonitor, scale: float, step: int = 1, log: bool = True) -> torch.nn.Linear:
    layer = torch.nn.Linear(4, 1)
    layer.weight.grad, layer.bias.grad = torch.full((1, 4), scale), torch.zeros(1)
    logs = types.SimpleNamespace(should_update_logs=log)
    trainer = types.SimpleNamespace(global_step=step, current_epoch=0, _logger_connector=logs)
    module = types.SimpleNamespace(named_parameters=layer.named_parameters, log_dict=lambda *a, **k: None)
    monitor.on_fit_start(trainer, module)
    monitor.on_before_optimizer_step(trainer, module, None)
    return layer


def test_adaptive_clipping_clips_at_a_percentile_of_recent_norms():
    monitor = GradientMonitor(clip_percentile=50, window=10)
    for _ in range(4):
        step_with_grads(monitor, 0.5, log=False)  # global norm 1.0
    spike = step_with_grads(monitor, 50.0, log=False)  # norm 100: clipped to the median of [1, 1, 1, 1, 100]
    assert torch.linalg.vector_norm(spike.weight.grad).item() == pytest.approx(1.0, rel=1e-4)


def test_gradient_monitor_warns_on_explosion_and_vanishing():
    monitor = GradientMonitor(explode=10.0, vanish=1e-3)
    with pytest.warns(UserWarning, match="exploding gradients: global norm reached 100"):
        step_with_grads(monitor, 50.0, step=0)
    with pytest.warns(UserWarning, match="vanishing gradients"):
        step_with_grads(monitor, 1e-6, step=1)


def test_clipping_adaptive_trains(tmp_path):
    cfg = compose_cfg([*SYNTHETIC, *QUICK, "logger=none", "clipping=adaptive", "clipping.percentile=25"], tmp_path)
    assert cfg.callbacks.gradient_monitor.clip_percentile == 25 and cfg.trainer.gradient_clip_val is None
    assert torch.isfinite(torch.tensor(train(cfg)["test/mse"]))


def test_tuner_finds_a_batch_size_and_a_learning_rate(tmp_path):
    cfg = compose_cfg(
        [
            *SYNTHETIC,
            "data.length=3000",
            "trainer.max_epochs=1",
            "trainer.limit_val_batches=2",
            "trainer.limit_test_batches=2",
            "trainer.enable_progress_bar=false",
            "tune.lr_find=true",
            "tune.lr_find_steps=20",
            "tune.batch_size=true",
            "tune.batch_size_trials=2",
        ],
        tmp_path,
    )
    train(cfg)
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["tuned"]["tune/batch_size"] > 32 and 1e-8 < summary["tuned"]["tune/lr"] < 1
    assert "tune/lr_finder" in events(tmp_path / "run").Tags()["images"]


def test_clipping_adaptive_resumes_exactly(tmp_path):
    """The AutoClip history travels in the checkpoint: 2 epochs + resume to 3 equal 3 straight epochs."""
    base = [*SYNTHETIC, *QUIET, "logger=none", "early_stopping=none", "clipping=adaptive", "clipping.percentile=10"]

    def run(name: str, *extra: str) -> dict[str, float]:
        cfg = compose_train(CONF, [*base, *extra], root_dir=tmp_path, output_dir=tmp_path / name, data_dir=tmp_path)
        return train(cfg)

    whole = run("whole", "trainer.max_epochs=3")
    run("resumed", "trainer.max_epochs=2")
    resumed = run("resumed", "trainer.max_epochs=3", "ckpt_path=last")
    assert reproducible(resumed) == pytest.approx(reproducible(whole), rel=1e-6, abs=1e-8)


def test_per_weight_clipping_scales_each_tensor_to_its_own_limit():
    """Keras' clipnorm: every parameter tensor's gradient norm is at most clip_per_weight, independently."""
    monitor = GradientMonitor(clip_per_weight=1.0)
    layer = torch.nn.Linear(4, 1)
    layer.weight.grad, layer.bias.grad = torch.full((1, 4), 1.5), torch.full((1,), 0.5)  # norms 3.0 and 0.5
    trainer = types.SimpleNamespace(global_step=1, current_epoch=0, _logger_connector=types.SimpleNamespace())
    trainer._logger_connector.should_update_logs = False
    module = types.SimpleNamespace(named_parameters=layer.named_parameters, log_dict=lambda *a, **k: None)
    monitor.on_fit_start(trainer, module)
    monitor.on_before_optimizer_step(trainer, module, None)
    assert torch.allclose(layer.weight.grad, torch.full((1, 4), 0.5), atol=1e-6)  # 3.0 scaled to 1.0
    assert torch.equal(layer.bias.grad, torch.full((1,), 0.5))  # under the limit: untouched
    assert monitor.history[0].item() == pytest.approx(9.25**0.5)  # the monitor saw the norm before clipping


@pytest.mark.parametrize("precision", ["32", "bf16-mixed"])
def test_clipping_per_weight_trains(tmp_path, precision):
    cfg = compose_cfg([*SYNTHETIC, *QUICK, "logger=none", "clipping=per_weight", f"precision={precision}"], tmp_path)
    assert cfg.callbacks.gradient_monitor.clip_per_weight == 1.0 and cfg.trainer.gradient_clip_val is None
    assert torch.isfinite(torch.tensor(train(cfg)["test/mse"]))
