"""Every option of every config group composes, and its objects instantiate."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import lightning as L
import pytest
import torch
from cifar_fixture import write_archive
from conftest import IMAGE_MODELS, ROOT, compose_cfg, group_options, run_train
from fmnist_fixture import write_set
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tunelab.cli import quote_numeric_choices
from tunelab.train import build_callbacks, build_data_and_task, instantiate_each
from tunelab.training.run import precision as precision_module

GROUPS = [
    "data",
    "model",
    "optimizer",
    "scheduler",
    "clipping",
    "early_stopping",
    "finetune",
    "precision",
    "trainer",
    "logger",
    "callbacks",
    "paths",
    "experiment",
    "debug",
]


def test_required_groups_and_options_exist():
    for group in GROUPS:
        assert group_options(group), f"conf/{group}/ has no options"
    assert {"etth1", "etth2", "csv", "synthetic"} <= set(group_options("data"))
    assert {"lstm", "gru", "rnn", "segrnn", "naive", "seasonal_naive", "linear", "cnn", "resnet"} <= set(
        group_options("model")
    )
    assert {
        "etth1_m96",
        "etth1_s96",
        "etth1_lstm",
        "etth1_lstm_s96",
        "etth1_lstm_s336",
        "etth1_lstm_m96",
        "cifar10_rmsprop",
        "cifar10_resnet",
    } <= set(group_options("experiment"))
    assert {"sgd", "adam", "adamw", "rmsprop", "adagrad"} <= set(group_options("optimizer"))
    assert {
        "none",
        "warmup",
        "step",
        "multistep",
        "exponential",
        "inverse_time",
        "sqrt",
        "linear",
        "cosine",
        "cosine_restarts",
        "onecycle",
        "plateau",
    } <= set(group_options("scheduler"))
    assert {"none", "norm", "value"} <= set(group_options("clipping"))
    assert {"32", "64", "16-mixed", "bf16-mixed"} <= set(group_options("precision"))
    assert {"fdr", "overfit", "limit", "profiler"} <= set(group_options("debug"))


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar10")
    write_archive(root / "cifar-10-python.tar.gz", per_batch=20, n_test=20)
    return root


@pytest.fixture(scope="module")
def fmnist_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("fashion_mnist")
    write_set(root, n_train=200, n_test=20)  # recipes on 5 of the 10 classes still fill a batch
    return root


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in group_options(g)])
def test_option_composes_and_instantiates(group, option, tmp_path, ett_dir, cifar_root, fmnist_root):
    overrides = [f"{group}={option}"]
    if group == "data" and option == "csv":
        overrides.append(f"data.path={ett_dir / 'ETTh2.csv'}")
    fmnist = option == "fashion_mnist" if group == "data" else group == "experiment" and "fmnist" in option
    if fmnist:  # a generated set in the official format
        overrides += [f"data.root={fmnist_root}", "data.checksums=false", "data.val_size=20", "data.batch_size=16"]
        overrides += ["data.per_class=null"] if group == "experiment" else ["model=cnn"]
    cifar = (group == "data" and option == "cifar10") or (group == "model" and option in IMAGE_MODELS)
    cifar |= group == "experiment" and option.startswith("cifar10")
    images = cifar or fmnist
    if cifar:  # a generated archive in the official format instead of the 170 MB download
        overrides += [] if group in ("data", "experiment") else ["data=cifar10"]
        overrides += [] if group in ("model", "experiment") else ["model=cnn"]
        overrides += [f"data.root={cifar_root}", "data.md5=null", "data.val_size=20", "data.batch_size=16"]
    cfg = compose_cfg(overrides, tmp_path)
    OmegaConf.resolve(cfg)  # every interpolation resolves

    datamodule, task = build_data_and_task(cfg)
    batch = next(iter(datamodule.train_dataloader()))
    x, y = batch[0], batch[1]
    out = task(x) if images else task(x, batch.start)
    assert out.shape == ((len(y), len(datamodule.classes)) if images else y.shape)
    loggers = instantiate_each(cfg.logger)
    callbacks = build_callbacks(cfg, loggers)
    if cfg.trainer.accelerator == "gpu" and not torch.cuda.is_available():
        with pytest.raises(Exception, match="gpu"):  # trainer=gpu refuses to fall back to the CPU
            instantiate(cfg.trainer)
        return
    precision = precision_module.device_precision(cfg.trainer)  # as train.py builds it (bf16-native: by the device)
    trainer = instantiate(cfg.trainer, precision=precision, callbacks=callbacks, logger=loggers or False)
    # On a CPU, Lightning runs 16-mixed as bfloat16 autocast (CPUs have no float16 autocast).
    cpu_fp16 = {"16-mixed": "bf16-mixed"} if trainer.accelerator.__class__.__name__ == "CPUAccelerator" else {}
    assert trainer.precision == cpu_fp16.get(precision, precision)


def test_command_line_group_wins_over_experiment(tmp_path):
    cfg = compose_cfg(["experiment=etth1_lstm", "data=etth2", "early_stopping=none"], tmp_path)
    assert cfg.data.path.endswith("ETTh2.csv")
    assert list(cfg.model.net.hidden_sizes) == [64, 32]
    assert "_target_" not in (cfg.early_stopping or {})


def test_classic_lstm_recipe(tmp_path):
    cfg = compose_cfg(["experiment=etth1_lstm"], tmp_path)
    assert cfg.recipe == "etth1_lstm/v1"
    assert list(cfg.model.net.hidden_sizes) == [64, 32] and cfg.model.net.dropout == 0.2
    assert cfg.data.batch_size == 32 and cfg.early_stopping.patience == 5


def test_numeric_precision_choices_are_quoted_for_hydra():
    assert quote_numeric_choices(["train.py", "precision=64", "x=1"]) == ["train.py", "precision='64'", "x=1"]
    assert quote_numeric_choices(["precision=32,64"]) == ["precision='32','64'"]
    assert quote_numeric_choices(["precision=bf16-mixed"]) == ["precision=bf16-mixed"]


def test_numeric_precision_on_the_command_line(tmp_path):
    result = run_train(["--cfg", "job", "precision=64"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "precision: 64-true" in result.stdout


def test_every_config_key_is_commented():
    """Each key line in conf/ carries a comment on its line, or its group is self-describing."""
    for path in sorted((ROOT / "conf").rglob("*.yaml")):
        lines = path.read_text().splitlines()
        assert (lines and lines[0].startswith("#")) or any("#" in line for line in lines), path


def test_train_yaml_comments_list_every_option_of_each_group():
    """Each defaults entry's comment ends with its group's options, which must be the files in conf/<group>/."""
    listed = {}
    for line in (ROOT / "conf" / "train.yaml").read_text().splitlines():
        entry = re.match(r"\s*- (\w+): \S+\s+# .*: (.+)$", line)
        if entry:
            listed[entry.group(1)] = entry.group(2)
    assert listed.pop("experiment") == "any file in conf/experiment/"  # 20-odd recipes: the README lists them
    assert set(listed) == {p.name for p in (ROOT / "conf").iterdir() if p.is_dir()} - {"experiment"}
    for group, options in listed.items():
        assert set(options.split(" | ")) == set(group_options(group)), group


@pytest.mark.parametrize(
    ("precision", "native", "warned"), [("bf16-mixed", False, True), ("bf16-mixed", True, False), ("32", False, False)]
)
def test_bf16_on_a_cpu_that_emulates_it_is_said(monkeypatch, caplog, precision, native, warned):
    monkeypatch.setattr(precision_module, "native_bf16", lambda: native)
    trainer = L.Trainer(accelerator="cpu", precision=precision, logger=False, enable_progress_bar=False)
    with caplog.at_level(logging.WARNING, logger=precision_module.__name__):
        precision_module.warn_emulated_bf16(trainer)
    said = [r.getMessage() for r in caplog.records if r.name == precision_module.__name__]
    assert said == (
        [
            f"precision={trainer.precision} on a CPU without AVX512-BF16 or AMX: bf16 is emulated here and "
            "likely slower than precision=32 (python bench/precision.py measures both)"
        ]
        if warned
        else []
    )


def test_native_bf16_reads_the_cpu_flags():
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    if not flags:
        pytest.skip("no /proc/cpuinfo on this system")
    assert precision_module.native_bf16() == bool(re.search(r"\b(avx512_bf16|amx_tile)\b", flags))


@pytest.mark.parametrize(("native", "expected"), [(True, "bf16-mixed"), (False, "32-true")])
def test_bf16_native_is_bf16_where_the_cpu_has_it(monkeypatch, tmp_path, native, expected):
    monkeypatch.setattr(precision_module, "native_bf16", lambda: native)
    cfg = compose_cfg(["precision=bf16-native", "trainer.accelerator=cpu"], tmp_path)
    assert cfg.trainer.precision == "bf16-native"
    assert precision_module.device_precision(cfg.trainer) == expected
    assert precision_module.device_precision(compose_cfg(["precision=bf16-mixed"], tmp_path).trainer) == "bf16-mixed"
