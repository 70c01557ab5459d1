"""The airbench recipe's parts (whitening stem, bias learning rate, lookahead) and the whole recipe, small, on CPU."""

from __future__ import annotations

import functools
import types

import pytest
import torch
from cifar_fixture import write_archive
from conftest import QUIET, compose_cfg, load_bench, read_metrics, run_app, run_dirs
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback

from tunelab.data.images.cifar_archive import load_cifar10
from tunelab.models import AirbenchNet
from tunelab.train import build_callbacks, build_data_and_task
from tunelab.training.callbacks.lookahead import Lookahead
from tunelab.training.optim.optimizers import build_optimizer


def test_stem_whitens_the_patches_of_its_data():
    torch.manual_seed(0)
    mixing = torch.randn(3, 3)  # strongly correlated channels
    images = torch.einsum("ij,njhw->nihw", mixing, torch.randn(200, 3, 32, 32)) + 2.0
    net = AirbenchNet(widths=(8, 8, 8))
    net.init_from_data(images)
    out = net.whiten(images)[:, :12]  # the first half; the second is its negative
    flat = out.permute(0, 2, 3, 1).reshape(-1, 12)
    assert flat.mean(0).abs().max() < 1e-3  # centred
    assert torch.allclose(flat.T @ flat / len(flat), torch.eye(12), atol=0.05)  # unit covariance
    assert torch.equal(net.whiten.weight[12:], -net.whiten.weight[:12])
    assert not net.whiten.weight.requires_grad and net(images[:4]).shape == (4, 10)


def test_biases_and_norm_shifts_train_at_the_scaled_lr_and_norm_scales_are_frozen():
    net = AirbenchNet(widths=(8, 8, 8))
    opt = build_optimizer(functools.partial(torch.optim.SGD, lr=0.5, weight_decay=0.01), net, bias_lr_scale=64)
    decay, no_decay = opt.param_groups
    assert decay["lr"] == 0.5 and decay["weight_decay"] == 0.01
    assert no_decay["lr"] == 32.0 and no_decay["weight_decay"] == 0.0
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms and all(not m.weight.requires_grad for m in norms)
    frozen = {id(m.weight) for m in norms} | {id(net.whiten.weight)}
    assert not frozen & {id(p) for g in opt.param_groups for p in g["params"]}


def test_lookahead_pulls_a_slow_copy_and_restarts_from_it():
    layer = torch.nn.Linear(2, 1)
    module = types.SimpleNamespace(parameters=layer.parameters, buffers=layer.buffers)
    look = Lookahead(every=2, decay=0.75)
    trainer = types.SimpleNamespace(global_step=1, estimated_stepping_batches=10)
    look.on_train_start(trainer, module)
    start = layer.weight.detach().clone()
    with torch.no_grad():
        layer.weight.add_(4.0)
    look.on_train_batch_end(trainer, module, None, None, 0)  # step 1: no sync
    assert torch.allclose(layer.weight, start + 4.0)
    trainer.global_step = 2
    look.on_train_batch_end(trainer, module, None, None, 1)  # sync: slow moves a quarter of the way
    assert torch.allclose(layer.weight, start + 1.0) and torch.allclose(look.slow[0], start + 1.0)
    ramped = Lookahead(every=1, decay=0.8, ramp=True)
    trainer.estimated_stepping_batches = 4
    ramped.on_train_start(trainer, module)
    with torch.no_grad():
        layer.weight.add_(1.0)
    ramped.on_train_batch_end(trainer, module, None, None, 1)  # halfway: decay 0.8 * 0.5^3 = 0.1
    assert torch.allclose(ramped.slow[0], start + 1.0 + 0.9)
    restored = Lookahead(every=2, decay=0.75)
    restored.load_state_dict(look.state_dict())
    assert torch.equal(restored.slow[0], look.slow[0])
    trainer.global_step, trainer.estimated_stepping_batches = 9, 9  # the run's last step, between syncs
    restored.on_train_start(trainer, module)
    with torch.no_grad():
        layer.weight.add_(4.0)
    expected = 0.75 * restored.slow[0] + 0.25 * layer.weight.detach()
    restored.on_train_batch_end(trainer, module, None, None, 0)  # synced: the run ends on the slow weights
    assert torch.allclose(layer.weight, expected)


def test_airbench_recipe_learns_through_train_py(tmp_path):
    archive = tmp_path / "cifar10" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    write_archive(archive)
    result = run_app(
        [
            "experiment=cifar10_airbench",
            f"data.root={archive.parent}",
            "data.md5=null",
            "data.val_size=200",
            "data.batch_size=64",
            "optimizer.lr=0.094",  # airbench's lr is per 1024 images: 1.5 * 64 / 1024
            "model.net.widths=[16,32,32]",
            "scheduler.warmup=10",
            "trainer.max_epochs=6",
            f"paths.log_dir={tmp_path / 'logs'}",
            *QUIET,
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = run_dirs(tmp_path / "logs")
    summary = read_metrics(run_dir)
    assert summary["metrics"]["test/acc"] > 0.6  # chance is 0.1; it scores .665 (micro accuracy, unequal classes)
    state = torch.load(summary["best_checkpoint"], weights_only=True)
    assert state["epoch"] == 5  # the last epoch's weights (lookahead's slow copy), not the best val loss
    assert any("Lookahead" in key for key in state["callbacks"])


def test_gpu_bench_feeds_both_sides_the_same_images(tmp_path):
    """bench/cifar_gpu.py: airbench's train.pt / test.pt hold exactly what tunelab reads from the batches."""
    bench = load_bench("cifar_gpu")
    bench.write_data(tmp_path / "cifar10", n_train=60, n_test=20, seed=3)
    ours = load_cifar10(tmp_path / "cifar10", md5=None, url=None)
    for split in ("train", "test"):
        theirs = torch.load(tmp_path / "cifar10" / f"{split}.pt", weights_only=True)  # as airbench loads it
        assert torch.equal(ours[f"{split}_images"], theirs["images"].permute(0, 3, 1, 2))  # HWC there, CHW here
        assert torch.equal(ours[f"{split}_labels"], theirs["labels"])
    assert len(ours["train_images"]) == 60 and len(theirs["images"]) == 20


# Tensor methods that copy a value to the host: on a GPU, each one waits for the device.
HOST_READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")


class HostReadCounter(Callback):
    """Counts HOST_READS calls made from the start to the end of each training step (hooks included)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counting, self.reads = False, 0
        for name in HOST_READS:
            monkeypatch.setattr(torch.Tensor, name, self._counted(getattr(torch.Tensor, name)))

    def _counted(self, method):
        def counted(tensor, *args, **kwargs):
            self.reads += self.counting
            return method(tensor, *args, **kwargs)

        return counted

    def on_train_batch_start(self, *args) -> None:
        self.counting = True

    def on_train_batch_end(self, *args) -> None:
        self.counting = False


@pytest.mark.parametrize(("callbacks", "reads_per_step"), [("timed", 0), ("default", 1)])
def test_timed_run_reads_nothing_back_from_the_device_during_steps(tmp_path, monkeypatch, callbacks, reads_per_step):
    """What CUDA's sync debug mode would report, counted on the CPU: the default NaN guard reads the
    loss once a step; callbacks=timed reads nothing (fewer steps than log_every_n_steps)."""
    write_archive(tmp_path / "cifar-10-python.tar.gz", per_batch=40, n_test=20)
    overrides = ["experiment=cifar10_airbench", f"callbacks={callbacks}", "logger=none", f"data.root={tmp_path}"]
    overrides += ["data.md5=null", "data.val_size=0", "data.batch_size=20", "model.net.widths=[8,16,16]"]
    cfg = compose_cfg([*overrides, "trainer.max_steps=12", "trainer.limit_val_batches=0", *QUIET], tmp_path)
    datamodule, model = build_data_and_task(cfg)
    counter = HostReadCounter(monkeypatch)  # last, so that it stops counting after every other hook
    trainer = instantiate(cfg.trainer, callbacks=[*build_callbacks(cfg, []), counter], logger=False)
    trainer.fit(model, datamodule=datamodule)
    assert trainer.global_step == 12
    assert counter.reads == 12 * reads_per_step
    if callbacks == "timed":  # only the recipe's lookahead; Lightning adds no checkpoint or progress bar
        assert [type(c) for c in trainer.callbacks] == [Lookahead, HostReadCounter]
        assert trainer.checkpoint_callback is None and trainer.progress_bar_callback is None
        assert not any(tmp_path.rglob("*.ckpt"))
