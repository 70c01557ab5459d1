"""Fine-tuning: weights from another run, partial loads, one-line refusals, freezing, lr per part, little-data keys."""

from __future__ import annotations

import json
import types
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import QUICK, compose_cfg, run_app, run_train
from fmnist_fixture import write_set

from tunelab.data import FashionMNISTDataModule, SyntheticSeriesDataModule
from tunelab.errors import UserError
from tunelab.models import RecurrentForecaster, SmallCNN
from tunelab.train import fit_and_test, prepare, train
from tunelab.training.finetune import backbone, load_pretrained
from tunelab.training.optim.optimizers import parameter_groups

SMALL = ["data=synthetic", "model=gru", "model.net.hidden_sizes=[16]", "logger=none", *QUICK]


def save_net(net: torch.nn.Module, path: Path) -> Path:
    """A checkpoint as Lightning writes it, as far as fine-tuning reads it: the task's state_dict."""
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()}, "optimizer_states": []}, path)
    return path


def pretrain(tmp_path: Path, *extra: str) -> Path:
    """A finished short run; returns its dir."""
    cfg = compose_cfg([*SMALL, "trainer.max_epochs=2", *extra], tmp_path / "pre")
    train(cfg)
    return Path(cfg.paths.output_dir)


def test_weights_arrive_and_the_optimizer_state_does_not(tmp_path):
    pre = pretrain(tmp_path)
    best = json.loads((pre / "metrics.json").read_text())["best_checkpoint"]
    saved = torch.load(best, weights_only=True)
    cfg = compose_cfg([*SMALL, "trainer.max_epochs=1", "finetune=weights", f"finetune.from={pre}"], tmp_path / "ft")
    job = prepare(cfg)
    for key, value in job.model.net.state_dict().items():
        assert torch.equal(value, saved["state_dict"][f"net.{key}"]), key
    # the task's own buffers (the scaler) come from the new data, not the checkpoint
    assert torch.equal(job.model.target_offset, job.datamodule.task_info()["target_offset"])
    assert job.ckpt_path is None
    fit_and_test(cfg, job)
    summary = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert summary["epochs"] == 1 and summary["finetune"]["from"] == best and summary["finetune"]["fresh"] == []
    steps = summary["global_step"]
    assert 0 < steps < saved["global_step"]  # a new run: its steps count from 0
    last = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    adam_steps = {float(s["step"]) for s in last["optimizer_states"][0]["state"].values()}
    assert adam_steps == {float(steps)}  # Adam's moments started anew: they count this run's steps only


def test_a_new_head_loads_the_rest_and_starts_the_head_anew(tmp_path):
    torch.manual_seed(0)
    source = save_net(SmallCNN(in_channels=1, num_classes=10, image_size=(28, 28)), tmp_path / "ten.ckpt")
    torch.manual_seed(1)
    net = SmallCNN(in_channels=1, num_classes=4, image_size=(28, 28))
    head = {k: v.clone() for k, v in net.classifier[4].state_dict().items()}
    record = load_pretrained(net, str(source), fresh=[])
    saved = torch.load(source, weights_only=True)["state_dict"]
    assert record["fresh"] == ["classifier.4.weight", "classifier.4.bias"]
    for key in record["loaded"]:
        assert torch.equal(net.state_dict()[key], saved[f"net.{key}"])
    assert len(record["loaded"]) == len(net.state_dict()) - 2
    assert all(torch.equal(net.classifier[4].state_dict()[k], v) for k, v in head.items())  # its own init


def test_another_horizon_starts_the_position_embedding_anew(tmp_path):
    dims = {"n_inputs": 1, "output_cols": [0], "seq_len": 48, "seg_len": 12, "decoder": "parallel"}
    source = save_net(RecurrentForecaster(horizon=24, hidden_sizes=[8], **dims), tmp_path / "h24.ckpt")
    net = RecurrentForecaster(horizon=48, hidden_sizes=[8], **dims)
    record = load_pretrained(net, str(source), fresh=[])
    assert record["fresh"] == ["position"]  # 4 output segments instead of 2; the segment head still fits


def test_fresh_parts_are_not_loaded_even_when_they_fit(tmp_path):
    torch.manual_seed(0)
    source = save_net(SmallCNN(in_channels=1, num_classes=5, image_size=(28, 28)), tmp_path / "five.ckpt")
    net = SmallCNN(in_channels=1, num_classes=5, image_size=(28, 28))
    record = load_pretrained(net, str(source), fresh=["classifier.4"])
    assert record["fresh"] == ["classifier.4.weight", "classifier.4.bias"]
    with pytest.raises(UserError, match=r"finetune\.fresh: the net has no module or parameter 'head'"):
        load_pretrained(net, str(source), fresh=["head"])


def test_a_wrong_architecture_gives_one_line_naming_the_first_mismatch(tmp_path):
    dims = {"n_inputs": 3, "output_cols": [0, 1, 2], "seq_len": 12, "horizon": 4}
    source = save_net(RecurrentForecaster(hidden_sizes=[16], **dims), tmp_path / "wide.ckpt")
    with pytest.raises(UserError) as err:
        load_pretrained(RecurrentForecaster(hidden_sizes=[8], **dims), str(source), fresh=[])
    message = str(err.value)
    assert "\n" not in message
    assert "net.layers.0.weight_ih_l0 is (64, 3) there and (32, 3) here" in message
    deeper = save_net(RecurrentForecaster(hidden_sizes=[8, 8], **dims), tmp_path / "deep.ckpt")
    with pytest.raises(UserError, match=r"net.layers.1.weight_ih_l0 is \(32, 8\) there and absent here"):
        load_pretrained(RecurrentForecaster(hidden_sizes=[8], **dims), str(deeper), fresh=[])


def test_a_wrong_source_on_the_command_line_is_one_line_and_writes_nothing_there(tmp_path):
    pre = pretrain(tmp_path)
    before = {p: p.stat().st_mtime_ns for p in pre.rglob("*")}
    args = [a for a in SMALL if not a.startswith("model.net.hidden_sizes")] + ["model.net.hidden_sizes=[8]"]
    result = run_train(
        [*args, "finetune=weights", f"finetune.from={pre}", f"hydra.run.dir={tmp_path / 'ft'}"], tmp_path
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "finetune.from:" in errors[0] and "(48, 1) there and (24, 1) here" in errors[0]
    assert {p: p.stat().st_mtime_ns for p in pre.rglob("*")} == before
    missing = run_app([*SMALL, "finetune=weights", f"finetune.from={tmp_path / 'nowhere'}"], tmp_path)  # in-process
    assert missing.returncode == 1 and "error: finetune.from: no checkpoint file or run dir at" in missing.stderr


class Snapshots(L.Callback):
    """The net's parameters and every param group's lr at the end of each training epoch."""

    def __init__(self) -> None:
        self.params: list[dict[str, torch.Tensor]] = []
        self.lrs: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.params.append({k: v.detach().clone() for k, v in pl_module.net.named_parameters()})
        self.lrs.append({g["name"]: g["lr"] for g in trainer.optimizers[0].param_groups})


def test_frozen_parts_stay_until_the_unfreeze_epoch_then_train_at_the_scaled_rate(tmp_path):
    pre = pretrain(tmp_path)
    keys = ["finetune=gradual", f"finetune.from={pre}", "finetune.unfreeze_at_epoch=2"]
    keys += ["finetune.backbone_lr_scale=0.1"]
    cfg = compose_cfg([*SMALL, "trainer.max_epochs=3", "optimizer.lr=0.01", *keys, "logger=csv"], tmp_path / "ft")
    job = prepare(cfg)
    start = {k: v.detach().clone() for k, v in job.model.net.named_parameters()}
    snapshots = Snapshots()
    job.trainer.callbacks.append(snapshots)
    fit_and_test(cfg, job)
    frozen = [k for k in start if k.startswith("layers.")]
    # backbone: all but the output layers (the head, and RevIN's per-channel affine map of model=gru)
    assert frozen and set(start) - set(frozen) == {"head.weight", "head.bias", "affine_weight", "affine_bias"}
    for epoch in (0, 1):
        assert all(torch.equal(snapshots.params[epoch][k], start[k]) for k in frozen)
        assert not torch.equal(snapshots.params[epoch]["head.weight"], start["head.weight"])
    assert all(not torch.equal(snapshots.params[2][k], start[k]) for k in frozen)
    assert snapshots.lrs[2] == pytest.approx({"layers": 0.001, "rest": 0.01})
    (curves,) = Path(cfg.paths.output_dir).rglob("metrics.csv")
    header = curves.read_text().splitlines()[0].split(",")
    assert {"train/lr/layers", "train/lr/rest"} <= set(header)  # the LR monitor shows each group


def test_parts_unfrozen_during_the_run_are_clipped_and_monitored(tmp_path):
    """Issue 44, defect 1: the gradient monitor listed the trainable tensors once, at the fit's start, while the
    backbone was frozen: once unfrozen, it escaped clipping=per_weight and had no grad/norm curve."""
    pre = pretrain(tmp_path)
    keys = ["finetune=gradual", f"finetune.from={pre}", "finetune.unfreeze_at_epoch=1", "finetune.backbone_lr_scale=1"]
    keys += ["clipping=per_weight", "clipping.max=1e-9", "optimizer=sgd", "optimizer.lr=0.5", "logger=csv"]
    cfg = compose_cfg([*SMALL, "trainer.max_epochs=3", *keys], tmp_path / "ft")
    job = prepare(cfg)
    start = {k: v.detach().clone() for k, v in job.model.net.named_parameters()}
    fit_and_test(cfg, job)
    moved = {k: (v.detach() - start[k]).norm().item() for k, v in job.model.net.named_parameters()}
    assert max(moved.values()) < 1e-7, moved  # 10 steps of at most 0.5 * 1e-9 each, every tensor
    (curves,) = Path(cfg.paths.output_dir).rglob("metrics.csv")
    header = curves.read_text().splitlines()[0].split(",")
    assert "grad/norm/net.layers.0.weight_hh_l0" in header and "grad/norm/net.head.weight" in header


@pytest.mark.parametrize("unfreeze_at_epoch", [1, "null"])
def test_freezing_touches_only_the_fit(unfreeze_at_epoch, tmp_path):
    """Issue 44, defect 4: Lightning calls the callback's setup for validate and test too, which froze the parts
    again after the fit (those unfrozen at epoch 1 included); a later fit of the module inherited that."""
    pre = pretrain(tmp_path)
    keys = ["finetune=gradual", f"finetune.from={pre}", f"finetune.unfreeze_at_epoch={unfreeze_at_epoch}"]
    cfg = compose_cfg([*SMALL, "trainer.max_epochs=2", *keys], tmp_path / "ft")
    job = prepare(cfg)
    trainable = {k for k, p in job.model.named_parameters() if p.requires_grad}
    fit_and_test(cfg, job)  # fit, then validate and test the best checkpoint
    assert {k for k, p in job.model.named_parameters() if p.requires_grad} == trainable


def test_lr_scales_give_each_part_its_group_also_while_frozen():
    net = RecurrentForecaster(n_inputs=2, output_cols=[0, 1], seq_len=12, horizon=4, hidden_sizes=[8, 4])
    net.layers[0].requires_grad_(False)
    groups = parameter_groups(torch.nn.ModuleDict({"net": net}), 0.1, lr=0.01, lr_scales={"net.layers": 0.5})
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == {"rest/decay", "rest/no_decay", "layers/decay", "layers/no_decay"}
    assert by_name["layers/decay"]["lr"] == pytest.approx(0.005) and "lr" not in by_name["rest/decay"]
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))  # frozen layer 0 included
    assert by_name["layers/no_decay"]["weight_decay"] == 0.0


def test_backbone_descends_into_parts_that_hold_the_output_layer():
    net = SmallCNN(in_channels=1, num_classes=5, image_size=(28, 28))
    assert backbone(net, net.output_modules) == ["features", "classifier.1"]


def test_a_shorter_training_period_keeps_val_and_test_windows():
    full = SyntheticSeriesDataModule(length=2000, seq_len=48, horizon=24)
    short = SyntheticSeriesDataModule(length=2000, seq_len=48, horizon=24, train_fraction=0.25)
    full.setup()
    short.setup()
    for split in ("val", "test"):
        assert torch.equal(full.datasets[split].series, short.datasets[split].series)
    start, end = full.ranges["train"]
    assert short.ranges["train"] == (end - round(0.25 * (end - start)), end)  # the last rows, next to validation
    assert torch.equal(short.datasets["train"][0][0], full.datasets["train"][end - start - 350][0])
    with pytest.raises(UserError, match=r"data.train_fraction must be in \(0, 1\]; got 0"):
        SyntheticSeriesDataModule(train_fraction=0)
    assert (short.offset, short.spread) == (full.offset, full.spread)  # fit on the whole training period
    kept = SyntheticSeriesDataModule(length=2000, seq_len=48, horizon=24, train_fraction=0.25, scaler_rows="kept")
    kept.setup()
    rows = full.datasets["train"].series[short.ranges["train"][0] : end] * full.spread + full.offset  # in units
    assert kept.offset == pytest.approx(rows.mean(0).numpy(), rel=1e-5) and kept.ranges == short.ranges
    with pytest.raises(UserError, match=r"data.scaler_rows must be one of all, kept; got 'some'"):
        SyntheticSeriesDataModule(scaler_rows="some")


def test_classes_and_per_class_keep_val_and_test_of_those_classes(tmp_path):
    write_set(tmp_path, n_train=600, n_test=200)
    kwargs = {"root": str(tmp_path), "checksums": False, "url": None, "val_size": 100}
    full, kept = FashionMNISTDataModule(**kwargs), FashionMNISTDataModule(**kwargs, classes=[7, 2], per_class=5)
    full.setup()
    kept.setup()
    assert kept.classes == [full.classes[7], full.classes[2]] and kept.net_dims()["num_classes"] == 2
    assert torch.bincount(kept.splits["train"][1]).tolist() == [5, 5]
    for split in ("val", "test"):
        images, labels = full.splits[split]
        for new, old in enumerate((7, 2)):
            assert torch.equal(kept.splits[split][0][kept.splits[split][1] == new], images[labels == old])
    train_images, train_labels = full.splits["train"]
    assert torch.equal(kept.splits["train"][0][kept.splits["train"][1] == 0], train_images[train_labels == 7][:5])
    with pytest.raises(UserError, match=r"data.classes must list distinct class indices in 0-9; got \[3, 3\]"):
        FashionMNISTDataModule(**kwargs, classes=[3, 3]).setup()
    with pytest.raises(UserError, match=r"data\.per_class=1000, but class"):
        FashionMNISTDataModule(**kwargs, per_class=1000).setup()


RECIPES = [("pretrain_etth2_m96", "finetune_etth1_m96"), ("pretrain_fmnist", "finetune_fmnist")]


M96_SIZE = pytest.mark.slow(reason="the M96 recipes' 512-wide GRUs: 25-30 s for one short fit each")
RECIPES = [pytest.param(*RECIPES[0], marks=M96_SIZE), RECIPES[1]]


@pytest.mark.parametrize(("pretrain_recipe", "finetune_recipe"), RECIPES)
def test_the_recipes_compose_and_run_a_short_fit(pretrain_recipe, finetune_recipe, tmp_path):
    short = [*QUICK, "logger=none", "trainer.max_epochs=1"]
    if "fmnist" in pretrain_recipe:
        write_set(tmp_path / "images", n_train=600, n_test=200)
        short += [f"data.root={tmp_path / 'images'}", "data.checksums=false", "data.val_size=100", "data.per_class=5"]
    cfg = compose_cfg([f"experiment={pretrain_recipe}", *[s for s in short if "per_class" not in s]], tmp_path / "pre")
    train(cfg)
    tuned = compose_cfg(
        [f"experiment={finetune_recipe}", *short, f"finetune.from={cfg.paths.output_dir}"], tmp_path / "ft"
    )
    metrics = train(tuned)
    summary = json.loads((Path(tuned.paths.output_dir) / "metrics.json").read_text())
    assert summary["status"] == "ok" and summary["finetune"]["loaded"]
    assert all(v == v for v in metrics.values())  # finite numbers, no NaN
    if "fmnist" in pretrain_recipe:  # issue 44, defect 2: 25 images and batches of 64 trained 0 steps, "ok"
        assert summary["global_step"] == 1


@pytest.mark.parametrize("fresh", [[], ["whiten"]])
def test_fine_tuning_an_airbench_net_keeps_the_whitening_it_loaded(fresh, tmp_path):
    """Issue 44, defect 3: the whitening stem, set from the data at the fit's start, overwrote the loaded one;
    it is set from the (new) data only when it is listed in finetune.fresh."""
    write_set(tmp_path / "images", n_train=600, n_test=200)
    images = [f"data.root={tmp_path / 'images'}", "data.checksums=false", "data.val_size=100"]
    small = ["experiment=fmnist_airbench", *images, *QUICK, "logger=none", "trainer.max_epochs=1"]
    small += ["model.net.widths=[8,8,8]", "data.batch_size=32", "model.tta=none"]
    pre = compose_cfg([*small, "data.classes=[0,1,2,3,4]"], tmp_path / "pre")
    train(pre)
    cfg = compose_cfg([*small, "data.classes=[5,6,7,8,9]", "finetune=weights", f"finetune.from={pre.paths.output_dir}",
                       f"finetune.fresh={fresh}".replace("'", "")], tmp_path / "ft")  # fmt: skip
    job = prepare(cfg)
    loaded = job.model.net.whiten.weight.clone()
    fit_and_test(cfg, job)
    assert torch.equal(job.model.net.whiten.weight, loaded) == (not fresh)


def test_a_training_split_with_no_batch_is_refused_in_one_line(tmp_path):
    """Issue 44, defect 2: Lightning skips a fit without training batches (a warning), and the run looked done."""
    write_set(tmp_path, n_train=600, n_test=200)
    kwargs = {"root": str(tmp_path), "checksums": False, "url": None, "val_size": 100}
    dm = FashionMNISTDataModule(**kwargs, classes=[0, 1], per_class=1)
    dm.setup()
    dm.trainer = types.SimpleNamespace(
        strategy=types.SimpleNamespace(root_device=torch.device("cpu")), global_rank=3, world_size=4, overfit_batches=0
    )
    with pytest.raises(UserError, match=r"^data: the training split has 2 items for 4 processes: no batch"):
        dm.train_dataloader()
