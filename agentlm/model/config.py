"""Llama-2 architecture hyper-parameters and the presets users name in configs.

The config is a frozen dataclass (hashable, so it can be a static jit argument) that round-trips through
JSON and through Hugging Face's `config.json`. Fields HF may set that would change the maths and that we
do not implement (rope_scaling, attention bias, ...) are rejected by name instead of being ignored.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import jax.numpy as jnp

from agentlm import storage


@dataclasses.dataclass(frozen=True)
class VisionConfig:
    patch_size: int = 8              # pixels per patch side; the data config's image_patch must match
    channels: int = 3
    max_patches: int = 1024          # rows of the patch-index table (patches per image, row-major)
    encoder_layers: int = 0          # residual per-patch SwiGLU blocks after the projection (0 = Fuyu's linear)
    encoder_mlp: int = 0             # their hidden width (0 = the decoder's intermediate_size)
    # add each patch's own contrast (its pixels minus their mean, scaled to unit RMS) to the scaled pixels: on
    # screenshots, mostly flat white, this lets edges and glyphs stand out from the first step (agentlm.model.vision)
    patch_norm: bool = False

    def __post_init__(self):
        for name in ("patch_size", "channels", "max_patches"):
            if getattr(self, name) < 1:
                raise ValueError(f"VisionConfig.{name}={getattr(self, name)} must be >= 1")
        if self.encoder_layers < 0 or self.encoder_mlp < 0:
            raise ValueError("VisionConfig.encoder_layers and encoder_mlp must be >= 0")

    @property
    def patch_dim(self) -> int:
        return self.patch_size * self.patch_size * self.channels

    def num_params(self, hidden_size: int, intermediate_size: int) -> int:
        m = self.encoder_mlp or intermediate_size
        return (self.patch_dim * hidden_size + self.max_patches * hidden_size
                + self.encoder_layers * (3 * hidden_size * m + hidden_size))

    @classmethod
    def from_value(cls, value) -> "VisionConfig | None":
        """None, a VisionConfig, or its dict form (config JSON / ConfigDict)."""
        if value is None or isinstance(value, cls):
            return value
        value = dict(value)
        unknown = sorted(set(value) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown VisionConfig fields: {unknown}")
        return cls(**value)


REMAT_POLICIES = ("none", "full", "save_dots", "save_qkv_attn", "save_attn_out", "minimal")


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_layers: int = 32
    num_heads: int = 32
    num_kv_heads: int = 32
    head_dim: int | None = None  # defaults to hidden_size // num_heads
    max_position_embeddings: int = 4096
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-5
    tie_word_embeddings: bool = False
    bos_token_id: int = 1
    eos_token_id: int = 2
    # Numerics and memory: parameters are stored in param_dtype and cast to dtype for the matmuls.
    dtype: str = "float32"
    param_dtype: str = "float32"
    remat_policy: str = "none"
    # Attention kernel: "dot" materialises [q, kv] scores per head group; "chunked" processes query
    # blocks of attention_chunk rows (less memory for long sequences); "causal_blocks" (training, no cache)
    # also skips key blocks after each query block: exact when positions increase along every segment.
    attention_impl: str = "dot"
    attention_chunk: int = 512
    # Layers per iteration of the layer scan (1 = a rolled loop, num_layers = fully unrolled). The weights stay
    # stacked on a leading `layers` axis either way; unrolling lets XLA fuse across layer boundaries and drops
    # the loop's per-iteration slicing at the cost of compile time growing with the unroll.
    scan_unroll: int = 1
    # The optional vision path (agentlm.model.vision); None = the text model, byte for byte as without it.
    vision: VisionConfig | None = None

    def __post_init__(self):
        object.__setattr__(self, "vision", VisionConfig.from_value(self.vision))
        if self.head_dim is None:
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_heads)
        problems = []
        if self.num_heads % self.num_kv_heads:
            problems.append(f"num_heads={self.num_heads} is not a multiple of num_kv_heads={self.num_kv_heads}")
        if self.remat_policy not in REMAT_POLICIES:
            problems.append(f"remat_policy={self.remat_policy!r} is not one of {REMAT_POLICIES}")
        if self.attention_impl not in ("dot", "chunked", "causal_blocks"):
            problems.append(f"attention_impl={self.attention_impl!r} is not 'dot', 'chunked' or 'causal_blocks'")
        if self.scan_unroll < 1:
            problems.append(f"scan_unroll={self.scan_unroll} must be >= 1")
        if self.head_dim % 2:
            problems.append(f"head_dim={self.head_dim} must be even for rotary embeddings")
        for name in ("dtype", "param_dtype"):
            try:
                jnp.dtype(getattr(self, name))
            except TypeError:
                problems.append(f"{name}={getattr(self, name)!r} is not a dtype")
        if problems:
            raise ValueError("invalid LlamaConfig: " + "; ".join(problems))

    @property
    def compute_dtype(self):
        return jnp.dtype(self.dtype)

    @property
    def weight_dtype(self):
        return jnp.dtype(self.param_dtype)

    def replace(self, **changes: Any) -> "LlamaConfig":
        return dataclasses.replace(self, **changes)

    def num_params(self) -> int:
        """Closed-form count; tests check it against jax.eval_shape of the real module."""
        e, m, v, hd = self.hidden_size, self.intermediate_size, self.vocab_size, self.head_dim
        attn = e * hd * (self.num_heads * 2 + self.num_kv_heads * 2)
        layer = attn + 3 * e * m + 2 * e
        head = 0 if self.tie_word_embeddings else v * e
        vision = self.vision.num_params(e, m) if self.vision else 0
        return v * e + self.num_layers * layer + e + head + vision

    # ---- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self, path: str | pathlib.Path) -> None:
        storage.path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def from_dict(cls, d: dict) -> "LlamaConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown LlamaConfig fields: {unknown}")
        return cls(**d)

    @classmethod
    def from_json(cls, path: str | pathlib.Path) -> "LlamaConfig":
        return cls.from_dict(json.loads(storage.path(path).read_text()))

    # ---- Hugging Face config.json ---------------------------------------------------------------
    @classmethod
    def from_hf(cls, hf: dict, **overrides: Any) -> "LlamaConfig":
        """Builds a config from a HF LlamaConfig dict, refusing fields that would change the maths."""
        arch = hf.get("architectures") or ["LlamaForCausalLM"]
        if hf.get("model_type", "llama") != "llama" or arch[0] != "LlamaForCausalLM":
            raise ValueError(f"config.json: model_type={hf.get('model_type')!r} architectures={arch} "
                             "is not a Llama causal LM")
        rope_params = hf.get("rope_parameters") or {}
        rope_type = rope_params.get("rope_type", "default")
        scaling = hf.get("rope_scaling")
        if scaling or rope_type not in ("default", None):
            raise ValueError(f"config.json: rope_scaling / rope_type={scaling or rope_type!r} is not supported "
                             "(only plain RoPE); refusing rather than producing a silently wrong model")
        for field in ("attention_bias", "mlp_bias"):
            if hf.get(field):
                raise ValueError(f"config.json: {field}=true is not supported (Llama-2 has no biases)")
        if hf.get("hidden_act", "silu") != "silu":
            raise ValueError(f"config.json: hidden_act={hf['hidden_act']!r} is not supported (only silu)")
        if hf.get("pretraining_tp", 1) not in (1, None):
            raise ValueError("config.json: pretraining_tp != 1 is not supported")
        theta = rope_params.get("rope_theta", hf.get("rope_theta", 10000.0))
        num_heads = hf["num_attention_heads"]
        kwargs = dict(
            vocab_size=hf["vocab_size"],
            hidden_size=hf["hidden_size"],
            intermediate_size=hf["intermediate_size"],
            num_layers=hf["num_hidden_layers"],
            num_heads=num_heads,
            num_kv_heads=hf.get("num_key_value_heads") or num_heads,
            head_dim=hf.get("head_dim") or hf["hidden_size"] // num_heads,
            max_position_embeddings=hf.get("max_position_embeddings", 4096),
            rope_theta=float(theta),
            rms_norm_eps=hf.get("rms_norm_eps", 1e-5),
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
            bos_token_id=hf.get("bos_token_id", 1) if hf.get("bos_token_id") is not None else 1,
            eos_token_id=_first(hf.get("eos_token_id", 2)),
            vision=hf.get("agentlm_vision"),     # written by to_hf for vision models; HF Llama ignores it
        )
        kwargs.update(overrides)
        return cls(**kwargs)

    def to_hf(self, torch_dtype: str = "float32") -> dict:
        extra = {"agentlm_vision": dataclasses.asdict(self.vision)} if self.vision else {}
        return extra | {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "max_position_embeddings": self.max_position_embeddings,
            "rope_theta": self.rope_theta,
            "rms_norm_eps": self.rms_norm_eps,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "hidden_act": "silu",
            "attention_bias": False,
            "mlp_bias": False,
            "initializer_range": 0.02,
            "torch_dtype": torch_dtype,  # transformers < 5 and vLLM read this key,
            "dtype": torch_dtype,  # transformers >= 5 this one
        }


def _first(x):
    return x[0] if isinstance(x, (list, tuple)) else x


# The published Hugging Face configs of meta-llama/Llama-2-{7,13,70}b-hf.
PRESETS: dict[str, LlamaConfig] = {
    "llama2_7b": LlamaConfig(),
    "llama2_13b": LlamaConfig(hidden_size=5120, intermediate_size=13824, num_layers=40, num_heads=40,
                              num_kv_heads=40),
    "llama2_70b": LlamaConfig(hidden_size=8192, intermediate_size=28672, num_layers=80, num_heads=64,
                              num_kv_heads=8),
    # Tiny configs for tests and the CPU demo. Dimensions divide by 8 so every mesh of 8 devices shards them.
    "tiny": LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=176, num_layers=2, num_heads=8,
                        num_kv_heads=4, max_position_embeddings=1024),
    "tiny_mha": LlamaConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4,
                            num_kv_heads=4, max_position_embeddings=1024),
    # The toy AgentTuning experiment's model (`make demo`, configs/sweep/ratio.py): 1.8M parameters, the demo
    # tokenizer's 512 pieces; big enough to learn the toy agent tasks and word games on a CPU in minutes.
    "toy_2m": LlamaConfig(vocab_size=512, hidden_size=192, intermediate_size=512, num_layers=4, num_heads=8,
                          num_kv_heads=4, max_position_embeddings=1024),
    # The toy vision run's decoder (configs/train/vision_toy.py, docs/vision.md): small enough to train on
    # screenshots on a CPU in under an hour, wide enough to read a target's position off its patches.
    "vision_toy": LlamaConfig(vocab_size=512, hidden_size=128, intermediate_size=352, num_layers=4, num_heads=8,
                              num_kv_heads=4, max_position_embeddings=1024),
    # The toy experiment's model since the copy-from-observation tasks (docs/toy_experiment.md): a 1024-piece
    # vocabulary makes every count and every syllable of a made-up name one token, so reading an answer off an
    # observation is a copy of 1-3 tokens; half toy_2m's width keeps a step cheap on 2 CPU cores.
    "toy_1m": LlamaConfig(vocab_size=1024, hidden_size=128, intermediate_size=384, num_layers=4, num_heads=8,
                          num_kv_heads=4, max_position_embeddings=1024),
    # The tokenizer-sized tiny model (Llama-2 vocabulary).
    "tiny_32k": LlamaConfig(vocab_size=32000, hidden_size=128, intermediate_size=352, num_layers=4, num_heads=8,
                            num_kv_heads=4, max_position_embeddings=2048),
    # Benchmark configs from the performance issue (19.5M and 58M parameters).
    "bench_20m": LlamaConfig(vocab_size=32000, hidden_size=256, intermediate_size=688, num_layers=4, num_heads=8,
                             num_kv_heads=8, max_position_embeddings=2048),
    "bench_58m": LlamaConfig(vocab_size=32000, hidden_size=512, intermediate_size=1376, num_layers=8, num_heads=8,
                             num_kv_heads=8, max_position_embeddings=2048),
}


def get_config(name: str, **overrides: Any) -> LlamaConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]
