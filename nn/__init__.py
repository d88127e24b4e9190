"""nn: modules, layers, optimizers, tokenizers, a GPT, checkpoints and generation, built on
tinygrad_lite only.

    import nn
    model = nn.GPT(nn.GPTConfig(vocab_size=65, n_layer=2, n_head=2, n_embd=32, block_size=32))
    opt = model.configure_optimizers(weight_decay=0.1, learning_rate=1e-3)
"""
from . import optim
from .attention import CausalSelfAttention, KVCache, LayerKV, causal_mask
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, restore, save_checkpoint
from .data import DataError, genre_text, get_batch, markdown_play_to_text, shakespeare_text, train_val_split
from .decoder import Decoder
from .distributed import DistributedDataParallel, DistributedSampler, get_communicator
from .generate import Generation, filter_logits, generate
from .gpt import GPT, Block, GPTConfig
from .heads import ScalarHead
from .hf_gpt2 import export_gpt2, gpt2_state_dict, hf_module_name, import_gpt2
from .layers import (
    GELU,
    MLP,
    Dropout,
    Embedding,
    LayerNorm,
    Linear,
    ReLU,
    RMSNorm,
    SiLU,
    Tanh,
    layer_norm_reference,
)
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import LoadResult, Module, ModuleDict, ModuleList, Parameter, Sequential, StateDictError
from .optim import SGD, Adam, AdamW, Constant, WarmupCosine, accumulate_gradients, clip_grad_norm_, set_lr
from .steps import evaluate, lm_loss, train_step
from .tokenizers import BPETokenizer, CharTokenizer, Tokenizer, TokenizerError
from .train import CONFIGS, TrainConfig, Trainer, load_model, with_overrides

__all__ = [
    "Module", "Parameter", "Sequential", "ModuleList", "ModuleDict", "StateDictError", "LoadResult",
    "Linear", "Embedding", "LayerNorm", "RMSNorm", "Dropout", "GELU", "ReLU", "SiLU", "Tanh", "MLP",
    "CrossEntropyLoss", "NLLLoss", "MSELoss", "BCEWithLogitsLoss",
    "layer_norm_reference", "CausalSelfAttention", "KVCache", "LayerKV", "causal_mask",
    "GPT", "GPTConfig", "Block", "optim", "SGD", "Adam", "AdamW", "Constant", "WarmupCosine", "set_lr",
    "clip_grad_norm_", "accumulate_gradients", "Tokenizer", "CharTokenizer", "BPETokenizer", "TokenizerError",
    "shakespeare_text", "genre_text", "markdown_play_to_text", "train_val_split", "get_batch", "DataError",
    "generate", "filter_logits", "save_checkpoint", "load_checkpoint", "restore", "Checkpoint", "CheckpointError",
    "Trainer", "TrainConfig", "CONFIGS", "load_model", "with_overrides", "train_step", "evaluate", "lm_loss",
    "Decoder", "Generation", "ScalarHead",
    "export_gpt2", "import_gpt2", "gpt2_state_dict", "hf_module_name",
    "distributed", "DistributedDataParallel", "DistributedSampler", "get_communicator",
]
