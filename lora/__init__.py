"""lora: LoRA (Hu et al. 2021) and its family, on nn and tinygrad_lite.

    import nn, lora
    model = nn.GPT(nn.GPTConfig(vocab_size=65, n_layer=2, n_head=2, n_embd=32, block_size=32))
    lora.apply_lora(model, "all-linear", r=8, alpha=16)      # only the adapters are trainable now
    summary = lora.trainable_summary(model)                  # "trainable params: ... of ..." (a string)

Members: rsLoRA (method="rslora"), DoRA ("dora"), PiSSA ("pissa"), OLoRA ("olora"),
QLoRA ("qlora": NF4 base), VeRA ("vera"); LoRA+ is `loraplus_param_groups`.
`memory_report` gives the analytic memory table; `lora.experiments` holds the course experiments;
`load_shipped_base` reads the pretrained GPT that notebook 06 fine-tunes (lora/shipped.py).
"""
from .adapter import LoRAAdapter, LoRALinear, lora_scale, merge_weight
from .apply import (
    METHODS,
    AdapterError,
    adapter_config,
    adapter_names,
    adapter_state_dict,
    apply_lora,
    count_parameters,
    delete_adapter,
    disable_adapter,
    find_targets,
    load_adapter,
    load_adapter_state_dict,
    lora_layers,
    merge,
    merge_and_unload,
    peft_configs,
    save_adapter,
    saved_modules,
    set_adapter,
    trainable_summary,
    unload,
    unmerge,
)
from .combine import add_weighted_adapter
from .config import LoraConfig
from .dora import DoRAAdapter
from .init import init_from_weight
from .loraplus import loraplus_param_groups
from .memory import MODEL_PRESETS, ModelShape, measured_training_bytes, memory_report, memory_table
from .mixed import adapter_per_row
from .modules_to_save import ModulesToSave
from .peft_files import load_pretrained, peft_state_dict, save_pretrained
from .quant import (
    NF4,
    NF4Linear,
    NF4Tensor,
    nf4_code,
    nf4_encode,
    quantization_error,
    quantize_int4,
    quantize_nf4,
)
from .shipped import SHIPPED_BASE, load_shipped_base, save_base
from .vera import SharedProjections, VeRAAdapter

__all__ = [
    "LoRAAdapter", "LoRALinear", "lora_scale", "merge_weight", "DoRAAdapter", "VeRAAdapter", "SharedProjections",
    "METHODS", "AdapterError", "apply_lora", "find_targets", "lora_layers", "count_parameters", "trainable_summary",
    "set_adapter", "disable_adapter", "merge", "unmerge", "merge_and_unload",
    "adapter_state_dict", "adapter_config", "load_adapter_state_dict", "save_adapter", "load_adapter",
    "init_from_weight", "loraplus_param_groups",
    "NF4", "nf4_code", "nf4_encode", "NF4Tensor", "NF4Linear", "quantize_nf4", "quantize_int4", "quantization_error",
    "memory_report", "memory_table", "measured_training_bytes", "ModelShape", "MODEL_PRESETS",
    "save_pretrained", "load_pretrained", "peft_state_dict",
    "LoraConfig", "ModulesToSave", "adapter_names", "peft_configs", "saved_modules", "delete_adapter", "unload",
    "add_weighted_adapter", "adapter_per_row", "SHIPPED_BASE", "load_shipped_base", "save_base",
]
