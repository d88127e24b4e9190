"""GPT: structure, init, weight decay groups, float64 gradient checks, KV cache, PyTorch oracle."""
import math

import numpy as np
import pytest

import nn
import tinygrad_lite as tg

TINY = nn.GPTConfig(block_size=5, vocab_size=7, n_layer=1, n_head=2, n_embd=4)


def tiny_gpt(config: nn.GPTConfig = TINY, seed: int = 0, dtype=tg.float64) -> nn.GPT:
    model = nn.GPT(config, dtype=dtype, generator=tg.Generator(seed))
    # Give the biases and LayerNorm gains non-trivial values, so their gradients are exercised.
    rng = np.random.default_rng(seed + 100)
    with tg.no_grad():
        for p in model.parameters():
            p.add_(rng.standard_normal(p.shape) * 0.3)
    return model


def tokens(B: int, T: int, V: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, V, (B, T))


def test_structure_names_and_tied_head():
    model = nn.GPT(nn.GPTConfig(block_size=8, vocab_size=11, n_layer=2, n_head=2, n_embd=8))
    names = [n for n, _ in model.named_parameters()]
    assert names[:2] == ["transformer.wte.weight", "transformer.wpe.weight"]
    assert "transformer.h.1.attn.c_attn.weight" in names and "transformer.ln_f.bias" in names
    assert "lm_head.weight" not in names  # tied: listed once, as the token embedding
    assert model.lm_head.weight is model.transformer.wte.weight
    logits, loss = model(tokens(3, 8, 11))
    assert logits.shape == (3, 8, 11) and loss is None


def test_init_statistics():
    config = nn.GPTConfig(block_size=64, vocab_size=512, n_layer=4, n_head=4, n_embd=128)
    model = nn.GPT(config, generator=tg.Generator(0))
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    assert abs(sd["transformer.wte.weight"].std() - 0.02) < 0.001
    assert abs(sd["transformer.h.0.mlp.c_fc.weight"].std() - 0.02) < 0.001
    residual = 0.02 / math.sqrt(2 * config.n_layer)
    assert abs(sd["transformer.h.0.mlp.c_proj.weight"].std() - residual) < 0.001
    assert abs(sd["transformer.h.3.attn.c_proj.weight"].std() - residual) < 0.001
    assert np.all(sd["transformer.h.0.attn.c_attn.bias"] == 0)
    assert np.all(sd["transformer.ln_f.weight"] == 1)
    # The untrained model predicts close to uniformly: loss ≈ ln(vocab).
    _, loss = model(tokens(4, 64, 512), tokens(4, 64, 512, seed=1))
    assert abs(loss.item() - math.log(512)) < 0.05


def test_same_seed_same_model():
    a = nn.GPT(TINY, generator=tg.Generator(5))
    b = nn.GPT(TINY, generator=tg.Generator(5))
    for (_, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(p.numpy(), q.numpy())


def test_configure_optimizers_decays_only_matrices():
    model = nn.GPT(TINY)
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3)
    assert isinstance(opt, nn.AdamW)
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decay["params"]) and all(p.ndim < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(model.parameters())


def test_config_validation():
    with pytest.raises(ValueError, match="divisible"):
        nn.GPTConfig(n_embd=10, n_head=3)
    with pytest.raises(ValueError, match="unknown keys"):
        nn.GPTConfig.from_dict({"n_layers": 2})
    with pytest.raises(ValueError, match="block_size=5"):
        nn.GPT(TINY)(tokens(1, 6, 7))


def test_causal_no_peeking():
    """Changing a later token must not change the logits at earlier positions."""
    model = tiny_gpt()
    a = tokens(1, 5, 7)
    b = a.copy()
    b[0, 3] = (b[0, 3] + 1) % 7
    la, lb = model(a)[0].numpy(), model(b)[0].numpy()
    np.testing.assert_array_equal(la[:, :3], lb[:, :3])
    assert not np.allclose(la[:, 3:], lb[:, 3:])


# --------------------------------------------------------------- gradient checks
@pytest.mark.parametrize("fused", [True, False])
def test_gradcheck_attention(fused):
    attn = nn.CausalSelfAttention(4, 2, generator=tg.Generator(0), fused=fused).double()
    x = tg.Tensor(np.random.default_rng(0).standard_normal((2, 3, 4)), requires_grad=True)
    assert tg.gradcheck(lambda x, *ps: attn(x), (x, *attn.parameters()))


def test_gradcheck_block():
    block = nn.Block(TINY, generator=tg.Generator(0)).double()
    x = tg.Tensor(np.random.default_rng(0).standard_normal((2, 3, 4)), requires_grad=True)
    assert tg.gradcheck(lambda x, *ps: block(x), (x, *block.parameters()), fast_mode=True)


def test_gradcheck_one_block_gpt_logits():
    model = tiny_gpt()
    idx = tokens(2, 5, 7)
    assert tg.gradcheck(lambda *ps: model(idx)[0], tuple(model.parameters()), fast_mode=True)


def test_gradcheck_whole_loss_slow_mode():
    model = tiny_gpt(nn.GPTConfig(block_size=4, vocab_size=5, n_layer=1, n_head=2, n_embd=4))
    idx, tgt = tokens(2, 4, 5), tokens(2, 4, 5, seed=1)
    assert tg.gradcheck(lambda *ps: model(idx, tgt)[1], tuple(model.parameters()))


def test_gradcheck_two_block_loss_fast_mode():
    model = tiny_gpt(nn.GPTConfig(block_size=4, vocab_size=6, n_layer=2, n_head=2, n_embd=4), seed=3)
    idx, tgt = tokens(2, 4, 6), tokens(2, 4, 6, seed=1)
    assert tg.gradcheck(lambda *ps: model(idx, tgt)[1], tuple(model.parameters()), fast_mode=True)


# ------------------------------------------------------------------------ KV cache
def test_kv_cache_logits_equal_full_recompute_every_step():
    config = nn.GPTConfig(block_size=10, vocab_size=9, n_layer=2, n_head=2, n_embd=8)
    model = tiny_gpt(config, seed=1)
    seq = tokens(3, 10, 9, seed=2)
    cache = nn.KVCache(config.n_layer)
    with tg.no_grad():
        logits, _ = model(seq[:, :4], cache=cache)  # prefill with a 4-token prompt
        np.testing.assert_allclose(logits.numpy(), model(seq[:, :4])[0].numpy(), rtol=0, atol=1e-10)
        for t in range(4, 10):
            step, _ = model(seq[:, t : t + 1], cache=cache)
            full, _ = model(seq[:, : t + 1])
            np.testing.assert_allclose(step.numpy()[:, -1], full.numpy()[:, -1], rtol=0, atol=1e-10)
        assert cache.length == 10
        with pytest.raises(ValueError, match="10 cached"):
            model(seq[:, :1], cache=cache)


def test_attention_dropout_is_seeded_and_fused_matches_composed():
    config = nn.GPTConfig(block_size=6, vocab_size=7, n_layer=1, n_head=2, n_embd=4, dropout=0.3)
    model = tiny_gpt(config)
    idx = tokens(2, 6, 7)
    tg.manual_seed(4)
    a = model(idx)[0].numpy()
    tg.manual_seed(4)
    assert np.array_equal(a, model(idx)[0].numpy())  # dropout draws from the seeded default generator
    model.eval()
    fused = model(idx)[0].numpy()
    for block in model.transformer.h:
        block.attn.fused = False
    np.testing.assert_allclose(model(idx)[0].numpy(), fused, rtol=0, atol=1e-12)


def test_causal_mask():
    m = nn.causal_mask(2, 5)  # two new queries after three cached positions
    assert m.tolist() == [[False] * 4 + [True], [False] * 5]


# ----------------------------------------------------------------- PyTorch oracle
def torch_gpt(config: nn.GPTConfig):  # noqa: ANN201 - an independent PyTorch implementation
    torch = pytest.importorskip("torch")
    tnn, tF = torch.nn, torch.nn.functional

    class Attn(tnn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = tnn.Linear(config.n_embd, 3 * config.n_embd)
            self.c_proj = tnn.Linear(config.n_embd, config.n_embd)

        def forward(self, x):
            B, T, C = x.shape
            H = config.n_head
            q, k, v = self.c_attn(x).split(C, dim=2)
            q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
            y = tF.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).reshape(B, T, C))

    class Blk(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = tnn.LayerNorm(config.n_embd)
            self.attn = Attn()
            self.ln_2 = tnn.LayerNorm(config.n_embd)
            self.mlp = tnn.Module()
            self.mlp.c_fc = tnn.Linear(config.n_embd, 4 * config.n_embd)
            self.mlp.c_proj = tnn.Linear(4 * config.n_embd, config.n_embd)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp.c_proj(tF.gelu(self.mlp.c_fc(self.ln_2(x))))

    class TorchGPT(tnn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = tnn.ModuleDict({
                "wte": tnn.Embedding(config.vocab_size, config.n_embd),
                "wpe": tnn.Embedding(config.block_size, config.n_embd),
                "h": tnn.ModuleList(Blk() for _ in range(config.n_layer)),
                "ln_f": tnn.LayerNorm(config.n_embd),
            })
            self.lm_head = tnn.Linear(config.n_embd, config.vocab_size, bias=False)
            self.lm_head.weight = self.transformer.wte.weight

        def forward(self, idx, targets):
            T = idx.shape[1]
            x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(T))
            for b in self.transformer.h:
                x = b(x)
            logits = self.lm_head(self.transformer.ln_f(x))
            return logits, tF.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    return TorchGPT().double()


@pytest.mark.oracle
def test_matches_pytorch_logits_and_every_gradient():
    torch = pytest.importorskip("torch")
    config = nn.GPTConfig(block_size=8, vocab_size=13, n_layer=2, n_head=2, n_embd=8)
    ours = tiny_gpt(config, seed=4)
    theirs = torch_gpt(config)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()}
                           | {"lm_head.weight": torch.from_numpy(ours.lm_head.weight.numpy().copy())})
    idx, tgt = tokens(3, 8, 13, seed=5), tokens(3, 8, 13, seed=6)
    logits, loss = ours(idx, tgt)
    loss.backward()
    t_logits, t_loss = theirs(torch.from_numpy(idx), torch.from_numpy(tgt))
    t_loss.backward()
    np.testing.assert_allclose(logits.numpy(), t_logits.detach().numpy(), rtol=0, atol=1e-10)
    assert abs(loss.item() - t_loss.item()) < 1e-10
    t_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), rtol=0, atol=1e-10, err_msg=name)
