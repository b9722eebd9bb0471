"""MAE and MoCo v3: forward/backward on tiny models, exported keys, masking, targets, loss, momentum."""

from __future__ import annotations

import math

import numpy as np
import pytest
import safetensors.torch
import torch
from PIL import Image

from dsbias.config import load_config
from dsbias.methods.mocov3 import mocov3_loss
from dsbias.methods.registry import create_method
from dsbias.models.backbones import create_backbone

TINY_VIT = "model.kwargs={patch_size: 8, depth: 1, embed_dim: 32, num_heads: 2}"


def tiny_cfg(method: str, *overrides: str, model: str = "vit"):
    """A 32-px config with a 1-block 32-d ViT (or timm's ResNet-10t) and narrow heads."""
    backbone = ["model=resnet18", "model.name=resnet10t"] if model == "resnet" else ["model=vit_tiny", TINY_VIT]
    return load_config(None, ["data=toy", "data.image_size=32", f"method={method}", *backbone,
                              "method.mae.decoder_dim=16", "method.mae.decoder_heads=2", "method.mae.decoder_depth=1",
                              "method.mocov3.proj_hidden_dim=32", "method.mocov3.pred_hidden_dim=32",
                              "method.mocov3.proj_dim=16", *overrides])


def batch_for(cfg, b: int = 4, seed: int = 0):
    x = torch.randn(b, 3, cfg.data.image_size, cfg.data.image_size, generator=torch.Generator().manual_seed(seed))
    views = x if cfg.method.name == "mae" else [x, x.flip(3) + 0.1 * torch.randn_like(x)]
    return views, torch.zeros(b, dtype=torch.long), torch.arange(b)


def _gather_worker(rank, store, full_k, full_q):
    import datetime

    import torch.distributed as dist

    from dsbias.methods.mocov3 import gather_keys

    # A file rendezvous: no TCP port that another job on this machine could hold.
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=60))
    try:
        b = full_k.shape[0] // 2
        k_all, r = gather_keys(full_k[rank * b:(rank + 1) * b])
        assert r == rank and torch.equal(k_all, full_k)
        loss, _ = mocov3_loss(full_q[rank * b:(rank + 1) * b], k_all, 0.2, r)
        # Each process's loss is the single-process loss over its own rows (the positives sit at rank * b + i).
        logits = torch.nn.functional.normalize(full_q, dim=1) @ torch.nn.functional.normalize(full_k, dim=1).T
        rows = torch.nn.functional.cross_entropy(logits / 0.2, torch.arange(2 * b), reduction="none") * 0.4
        torch.testing.assert_close(loss, rows[rank * b:(rank + 1) * b].mean())
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("method,model", [("mae", "vit"), ("mocov3", "vit"), ("mocov3", "resnet")])
def test_forward_backward_and_backbone_exports_plain_keys(method, model):
    cfg = tiny_cfg(method, model=model)
    torch.manual_seed(0)
    m = create_method(cfg, num_sources=3)
    out = m(batch_for(cfg))
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    trainable = [(n, p) for n, p in m.backbone.named_parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for _, p in trainable), [n for n, p in trainable if p.grad is None]
    assert any(p.grad.abs().sum() > 0 for _, p in trainable)
    # Every trainable parameter of the method gets a gradient (DDP without find_unused_parameters needs it).
    assert [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None] == []
    # The exported backbone is the stock model: same keys, loads strictly.
    plain = create_backbone(cfg.model, cfg.data.image_size)
    assert list(m.backbone.state_dict()) == list(plain.state_dict())
    plain.load_state_dict(m.backbone.state_dict(), strict=True)
    images = batch_for(cfg)[0] if method == "mae" else batch_for(cfg)[0][0]
    assert plain.eval()(images).shape == (4, plain.num_features)


def test_method_weights_are_held_once():
    # The backbone is reachable as m.backbone but must appear once in the state (no aliased tensors to save).
    m = create_method(tiny_cfg("mae"), 3)
    state = m.state_dict()
    ptrs = [t.data_ptr() for t in state.values()]
    assert len(ptrs) == len(set(ptrs))
    assert not any(k.startswith("backbone.") for k in state)


def test_mae_mask_ratio_and_partition():
    cfg = tiny_cfg("mae", "method.mae.mask_ratio=0.75")
    m = create_method(cfg, 3)
    n = (32 // 8) ** 2  # 16 patches, token 0 is the cls token
    keep, mask = m.random_masking(6, torch.device("cpu"))
    assert keep.shape == (6, 1 + n // 4) and mask.shape == (6, n - n // 4)
    assert (keep[:, 0] == 0).all() and (mask > 0).all()
    for k, msk in zip(keep, mask):
        assert sorted(k.tolist() + msk.tolist()) == list(range(n + 1))
    assert len({tuple(sorted(r.tolist())) for r in mask}) > 1  # random per sample


def test_mae_targets_raw_and_normalised_pixels():
    cfg = tiny_cfg("mae", "method.mae.norm_pix_loss=false")
    m = create_method(cfg, 3)
    images = batch_for(cfg, b=2)[0]
    _, mask = m.random_masking(2, torch.device("cpu"))
    raw = m.target(images, mask)  # [B, M, p*p*3]
    b, t = 1, int(mask[1, 0]) - 1  # one masked patch, in row-major patch order, pixels as (row, col, channel)
    r, c = divmod(t, 32 // 8)
    expected = images[b, :, r * 8:(r + 1) * 8, c * 8:(c + 1) * 8].permute(1, 2, 0).reshape(-1)
    torch.testing.assert_close(raw[b, 0], expected)
    m.norm_pix_loss = True
    norm = m.target(images, mask)
    torch.testing.assert_close(norm.mean(-1), torch.zeros(norm.shape[:2]), atol=1e-5, rtol=0)
    torch.testing.assert_close(norm.var(-1), torch.ones(norm.shape[:2]), atol=1e-3, rtol=0)


def test_mae_keeps_given_weights(tmp_path):
    cfg = tiny_cfg("mae")
    src = create_backbone(cfg.model, 32)
    with torch.no_grad():
        src.pos_embed.normal_()
    safetensors.torch.save_file(src.state_dict(), str(tmp_path / "w.safetensors"))
    m = create_method(tiny_cfg("mae", f"model.weights={tmp_path / 'w.safetensors'}"), 3)
    for k, v in src.state_dict().items():
        torch.testing.assert_close(m.backbone.state_dict()[k], v, msg=k)
    # A fresh backbone gets MAE's fixed sin-cos position embedding instead.
    fresh = create_method(cfg, 3)
    assert not fresh.backbone.pos_embed.requires_grad


@pytest.mark.parametrize("rank,world", [(0, 1), (1, 2), (2, 3)])
def test_mocov3_loss_equals_formula(rank, world):
    g = torch.Generator().manual_seed(rank)
    b, c, t = 4, 8, 0.2
    q, k_all = torch.randn(b, c, generator=g), torch.randn(world * b, c, generator=g)
    loss, acc = mocov3_loss(q, k_all, t, rank)
    total, correct = 0.0, 0
    for i in range(b):
        qi = q[i] / q[i].norm()
        logits = [float(qi @ (k / k.norm())) / t for k in k_all]
        positive = rank * b + i
        total += -math.log(math.exp(logits[positive]) / sum(math.exp(z) for z in logits))
        correct += int(np.argmax(logits) == positive)
    assert loss.item() == pytest.approx(2 * t * total / b, rel=1e-5)
    assert acc.item() == pytest.approx(correct / b)


def test_mocov3_logits_stay_fp32_under_bf16_autocast():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(64, 32, generator=g).bfloat16(), torch.randn(64, 32, generator=g).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = mocov3_loss(q, k, 0.2)
    assert loss.dtype == torch.float32
    # The same bf16 inputs computed in fp32 outside autocast: equal, so no bf16 matmul happened inside.
    torch.testing.assert_close(loss, mocov3_loss(q.float(), k.float(), 0.2)[0], rtol=1e-6, atol=1e-6)


def test_momentum_update_and_schedule():
    m = create_method(tiny_cfg("mocov3"), 3)
    total = 10
    assert m.momentum_at(0, total) == pytest.approx(0.99)
    assert m.momentum_at(total, total) == pytest.approx(1.0)
    assert m.momentum_at(total // 2, total) == pytest.approx(1 - 0.5 * 0.01)  # v3: 1 - (1 - m0)(1 + cos)/2
    ms = [m.momentum_at(s, total) for s in range(total + 1)]
    assert all(a < b for a, b in zip(ms, ms[1:]))
    with torch.no_grad():  # make online and momentum weights differ
        for p in list(m.backbone.parameters()) + list(m.projector.parameters()):
            p.add_(torch.randn_like(p))
    online = [p.clone() for p in list(m.backbone.parameters()) + list(m.projector.parameters())]
    ema = [p.clone() for p in list(m.momentum_backbone.parameters()) + list(m.momentum_projector.parameters())]
    step = 3
    m.after_step(step, total)
    mom = m.momentum_at(step + 1, total)
    after = list(m.momentum_backbone.parameters()) + list(m.momentum_projector.parameters())
    for e, o, a in zip(ema, online, after):
        torch.testing.assert_close(a, mom * e + (1 - mom) * o)
    assert not any(p.requires_grad for p in after)


def test_train_transforms_give_the_views_each_method_expects():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8))
    mae = create_method(tiny_cfg("mae"), 3).create_train_transform()(img)
    assert isinstance(mae, torch.Tensor) and mae.shape == (3, 32, 32)
    views = create_method(tiny_cfg("mocov3"), 3).create_train_transform()(img)
    assert len(views) == 2 and all(v.shape == (3, 32, 32) for v in views)
    assert not torch.equal(views[0], views[1])


def test_keys_are_gathered_across_two_processes(tmp_path):
    g = torch.Generator().manual_seed(0)
    args = (str(tmp_path / "rendezvous"), torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g))
    # spawn, not fork: a fork after torch has started its OpenMP pool (earlier tests) can hang the child.
    torch.multiprocessing.start_processes(_gather_worker, args=args, nprocs=2, start_method="spawn")


@pytest.mark.gpu
def test_mocov3_logits_stay_fp32_under_cuda_bf16_autocast():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(64, 32, generator=g).cuda(), torch.randn(64, 32, generator=g).cuda()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss, _ = mocov3_loss(q, k, 0.2)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, mocov3_loss(q, k, 0.2)[0], rtol=1e-5, atol=1e-5)
