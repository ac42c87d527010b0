"""A merged model as one GGUF file, the format of llama.cpp, Ollama and LM Studio.

Built on the `gguf` package, the llama.cpp project's own writer and tensor-name maps. The
conventions llama.cpp expects, learned from its converter (convert_hf_to_gguf.py):
- tensors get llama.cpp's names (gguf.TensorNameMap), GGUF stores each shape reversed;
- llama.cpp's Llama computes rotary embeddings on interleaved pairs of each head's dimensions,
  transformers on its two halves, so the rows of Llama-family Q and K weights are permuted to
  match (Qwen's "NeoX" rotary embeddings use halves in both, and are left as they are);
- norms and biases stay float32; the matrices are stored in the chosen type (q8_0: blocks of 32
  values with one scale; a row that does not divide into blocks falls back to f16);
- Llama 3.1's "llama3" rotary scaling is a tensor of per-frequency factors (rope_freqs).

The file is planned before anything is loaded (shapes from the model's config on the meta
device), so its exact size is known in advance and checked against the free disk space; the
header is written first and the tensors one at a time, so memory holds one extra tensor at most.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuiwiz.errors import TuiwizError, first_line

FORMATS = ("f16", "bf16", "q8_0")  # written here; more through llama-quantize (quantize.py)
GGUF_FILE = "model.gguf"
SAFETY_MARGIN = 64 * 2**20  # free space kept beyond the file itself
LONG_WRITE = 256 * 2**20  # files this big get progress lines as they are written


@dataclass(frozen=True)
class Architecture:
    gguf_name: str  # gguf.MODEL_ARCH member
    interleaved_rope: bool  # llama.cpp's Llama: Q/K rows permuted from transformers' layout
    family: str


ARCHITECTURES = {
    "LlamaForCausalLM": Architecture("LLAMA", True, "Llama (Llama 2 and 3, TinyLlama, SmolLM)"),
    "MistralForCausalLM": Architecture("LLAMA", True, "Mistral"),
    "Qwen2ForCausalLM": Architecture("QWEN2", False, "Qwen2 and Qwen2.5"),
    "Qwen3ForCausalLM": Architecture("QWEN3", False, "Qwen3"),
}
ROPE_TYPES = ("default", "linear", "llama3", "yarn")


def supported_families() -> str:
    return ", ".join(dict.fromkeys(a.family for a in ARCHITECTURES.values()))


def architecture(cfg: Mapping[str, Any]) -> Architecture:
    """The architecture of a model config (config.json as a dict); TuiwizError if unsupported."""
    by_type = {"llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM"}
    by_type |= {"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}
    model_type = str(cfg.get("model_type", "?"))
    name = (cfg.get("architectures") or [by_type.get(model_type, model_type)])[0]
    arch = ARCHITECTURES.get(name)
    if arch is None:
        raise TuiwizError(
            f"GGUF export does not support the {name} architecture; it supports "
            f"{supported_families()}"
        )
    if cfg.get("hidden_act", "silu") not in ("silu", "swish"):
        raise TuiwizError(f"GGUF export: activation {cfg['hidden_act']} is not Llama's silu")
    rope = rope_settings(cfg)
    if rope["rope_type"] not in ROPE_TYPES or (
        rope["rope_type"] == "llama3" and not arch.interleaved_rope
    ):
        raise TuiwizError(
            f"GGUF export: rotary scaling '{rope['rope_type']}' is not supported "
            f"(supported: {', '.join(ROPE_TYPES)})"
        )
    return arch


def rope_settings(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Rotary embedding settings from transformers 5's rope_parameters or the older
    rope_theta / rope_scaling keys."""
    params = dict(cfg.get("rope_parameters") or cfg.get("rope_scaling") or {})
    params.setdefault("rope_theta", cfg.get("rope_theta", 10000.0))
    params["rope_type"] = params.get("rope_type") or params.get("type") or "default"
    return params


def head_dim(cfg: Mapping[str, Any]) -> int:
    return int(cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"])


def qtype_of(name: str):
    import gguf

    return {
        "f32": gguf.GGMLQuantizationType.F32,
        "f16": gguf.GGMLQuantizationType.F16,
        "bf16": gguf.GGMLQuantizationType.BF16,
        "q8_0": gguf.GGMLQuantizationType.Q8_0,
    }[name]


def file_type_of(name: str):
    import gguf

    return {
        "f32": gguf.LlamaFileType.ALL_F32,  # for tests that compare exact logits
        "f16": gguf.LlamaFileType.MOSTLY_F16,
        "bf16": gguf.LlamaFileType.MOSTLY_BF16,
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
    }[name]


@dataclass(frozen=True)
class TensorPlan:
    source: str | None  # transformers' name; None for a tensor made here (rope_freqs)
    name: str  # llama.cpp's name
    shape: tuple[int, ...]  # as torch has it
    qtype: Any  # gguf.GGMLQuantizationType
    permute_heads: int = 0  # Q/K: permute the rows of this many heads

    @property
    def nbytes(self) -> int:
        import gguf

        block, size = gguf.GGML_QUANT_SIZES[self.qtype]
        return math.prod(self.shape) // block * size


@dataclass
class GgufPlan:
    cfg: dict[str, Any]
    arch: Architecture
    vocab: Any  # gguf_vocab.Vocab
    tensors: list[TensorPlan]
    fmt: str  # the type written here
    name: str
    caveats: list[str] = field(default_factory=list)
    fmt_requested: str = ""  # the final type (llama-quantize makes a k-quant from `fmt`)

    def size(self) -> int:
        """The file's size in bytes, to within the metadata estimate (an upper bound)."""
        align = 32  # GGUF's default alignment
        data = sum((t.nbytes + align - 1) // align * align for t in self.tensors)
        infos = sum(len(t.name) + 64 for t in self.tensors)
        return data + infos + self.vocab.metadata_bytes() + 64 * 1024


def plan_tensors(
    shapes: Mapping[str, tuple[int, ...]], cfg: Mapping[str, Any], arch: Architecture, fmt: str
) -> list[TensorPlan]:
    """Which tensor goes where, in which type; TuiwizError for a tensor llama.cpp has no place
    for (it would refuse the file)."""
    import gguf

    model_arch = getattr(gguf.MODEL_ARCH, arch.gguf_name)
    names = gguf.get_tensor_name_map(model_arch, int(cfg["num_hidden_layers"]))
    allowed = set(gguf.MODEL_TENSORS[model_arch])
    chosen = qtype_of(fmt)
    tied = bool(cfg.get("tie_word_embeddings"))
    plans = []
    for source, shape in shapes.items():
        if source.endswith("rotary_emb.inv_freq") or (tied and source == "lm_head.weight"):
            continue  # recomputed by llama.cpp / the output shares the embeddings
        found = names.get_type_and_name(source, try_suffixes=(".weight", ".bias"))
        if found is None or found[0] not in allowed:
            raise TuiwizError(
                f"GGUF export: the model's tensor {source} has no place in llama.cpp's "
                f"{gguf.MODEL_ARCH_NAMES[model_arch]} architecture"
            )
        kind, name = found
        qtype = chosen
        if len(shape) < 2 or not name.endswith(".weight") or name.endswith("_norm.weight"):
            qtype = gguf.GGMLQuantizationType.F32  # llama.cpp reads norms and biases as f32
        elif qtype == gguf.GGMLQuantizationType.Q8_0 and shape[-1] % 32:
            qtype = gguf.GGMLQuantizationType.F16  # rows must divide into blocks of 32
        heads = 0
        if arch.interleaved_rope and kind == gguf.MODEL_TENSOR.ATTN_Q:
            heads = int(cfg["num_attention_heads"])
        elif arch.interleaved_rope and kind == gguf.MODEL_TENSOR.ATTN_K:
            heads = int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"])
        plans.append(TensorPlan(source, name, tuple(shape), qtype, heads))
    if rope_settings(cfg)["rope_type"] == "llama3":
        rope_freqs = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight"
        plans.append(
            TensorPlan(None, rope_freqs, (head_dim(cfg) // 2,), gguf.GGMLQuantizationType.F32)
        )
    return plans


def plan_for(fr: Any, fmt: str, progress: Callable[[str], None] = lambda m: None) -> GgufPlan:
    """The GGUF file of a finished run's merged model, planned from its config and tokenizer
    alone (nothing is loaded yet); TuiwizError for what llama.cpp could not reproduce."""
    from transformers import AutoConfig, AutoTokenizer

    from tuiwiz.inspect.model import build_meta_model

    model = fr.config["model"]
    try:
        config = AutoConfig.from_pretrained(
            fr.model_path(progress),
            revision=model.get("revision") or None,
            trust_remote_code=bool(model.get("trust_remote_code")),
        )
    except (OSError, ValueError) as e:
        reason = first_line(e)
        raise TuiwizError(f"cannot read the base model's config.json: {reason}") from None
    architecture(config.to_dict())  # before building anything
    meta = build_meta_model(config)
    tokenizer = AutoTokenizer.from_pretrained(str(fr.adapter))
    return plan_model(config.to_dict(), meta, tokenizer, fmt, fr.config["name"])


def plan_model(cfg: dict[str, Any], model: Any, tokenizer: Any, fmt: str, name: str) -> GgufPlan:
    """The GGUF file of a transformers model (its tensors may be on the meta device)."""
    from tuiwiz.after.gguf_vocab import vocab_from_tokenizer

    arch = architecture(cfg)
    shapes = {key: tuple(t.shape) for key, t in model.state_dict().items()}
    n_vocab = int(model.get_input_embeddings().weight.shape[0])
    vocab = vocab_from_tokenizer(tokenizer, n_vocab)
    plan = GgufPlan(cfg, arch, vocab, plan_tensors(shapes, cfg, arch, fmt), fmt, name)
    if vocab.caveat:
        plan.caveats.append(vocab.caveat)
    window = cfg.get("sliding_window") if cfg.get("use_sliding_window", True) else None
    if isinstance(window, int) and window < int(cfg["max_position_embeddings"]):
        plan.caveats.append(
            f"llama.cpp attends to the whole context where the model only looks {window} "
            "tokens back: answers differ beyond that length"
        )
    return plan


def llama3_rope_factors(cfg: Mapping[str, Any]):
    """Llama 3.1's frequency-dependent rotary scaling as per-frequency divisors: long
    wavelengths are stretched by `factor`, short ones kept, the band between blended smoothly
    (Meta's apply_scaling in llama3's reference code)."""
    import numpy as np

    rope = rope_settings(cfg)
    dim = head_dim(cfg)
    factor = rope.get("factor", 8.0)
    low, high = rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    original = rope.get("original_max_position_embeddings", 8192)
    freqs = 1.0 / rope["rope_theta"] ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    wavelengths = 2 * math.pi / freqs
    smooth = (original / wavelengths - low) / (high - low)
    blended = 1 / ((1 - smooth) / factor + smooth)
    factors = np.where(
        wavelengths < original / high, 1.0, np.where(wavelengths > original / low, factor, blended)
    )
    return factors.astype(np.float32)


def permute_rows(weight, heads: int):
    """transformers' rotary layout (two halves per head) -> llama.cpp's (interleaved pairs)."""
    rows = weight.shape[0]
    return (
        weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def _metadata(writer: Any, plan: GgufPlan) -> None:
    import gguf

    cfg, vocab = plan.cfg, plan.vocab
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(plan.name)
    writer.add_context_length(int(cfg["max_position_embeddings"]))
    writer.add_embedding_length(int(cfg["hidden_size"]))
    writer.add_block_count(int(cfg["num_hidden_layers"]))
    writer.add_feed_forward_length(int(cfg["intermediate_size"]))
    writer.add_head_count(int(cfg["num_attention_heads"]))
    writer.add_head_count_kv(int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"]))
    writer.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-6)))
    rope = rope_settings(cfg)
    writer.add_rope_freq_base(float(rope["rope_theta"]))
    if cfg.get("head_dim"):
        writer.add_key_length(head_dim(cfg))
        writer.add_value_length(head_dim(cfg))
    if plan.arch.interleaved_rope:
        writer.add_vocab_size(len(vocab.tokens))
        writer.add_rope_dimension_count(head_dim(cfg))
    if rope["rope_type"] == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    elif rope["rope_type"] == "yarn":
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(float(rope["factor"]))
        writer.add_rope_scaling_orig_ctx_len(int(rope["original_max_position_embeddings"]))
    writer.add_file_type(file_type_of(plan.fmt))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    writer.add_tokenizer_model(vocab.model)
    if vocab.pre:
        writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    if vocab.scores is not None:
        writer.add_token_scores(vocab.scores)
    if vocab.merges:
        writer.add_token_merges(vocab.merges)
    for kind, token_id in vocab.special.items():
        getattr(writer, f"add_{kind}_token_id")(token_id)
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(vocab.add_eos)
    if vocab.add_space_prefix is not None:
        writer.add_add_space_prefix(vocab.add_space_prefix)
    if vocab.chat_template:
        writer.add_chat_template(vocab.chat_template)


def free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free


def check_space(folder: Path, needed: int, what: str) -> None:
    """TuiwizError unless `folder`'s disk has room for `needed` bytes (and a margin)."""
    free = free_bytes(folder)
    if free < needed + SAFETY_MARGIN:
        raise TuiwizError(
            f"not enough disk space in {folder}: {what} needs {human_bytes(needed)}, "
            f"{human_bytes(free)} is free; free some space or choose another --out"
        )


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _tensor_data(plan: TensorPlan, state: Mapping[str, Any], cfg: Mapping[str, Any]):
    import gguf
    import numpy as np

    if plan.source is None:
        data = llama3_rope_factors(cfg)
    else:
        data = state[plan.source].detach().to("cpu").float().numpy()
        if plan.permute_heads:
            data = permute_rows(data, plan.permute_heads)
    data = np.ascontiguousarray(data, dtype=np.float32)
    return gguf.quants.quantize(data, plan.qtype)


def write(
    plan: GgufPlan,
    state: Mapping[str, Any],
    path: Path,
    progress: Callable[[str], None] = lambda message: None,
    fraction: Callable[[float], None] = lambda done: None,
) -> None:
    """Write the GGUF file: the header (metadata and tensor directory), then each tensor."""
    import gguf
    import numpy as np

    arch_name = gguf.MODEL_ARCH_NAMES[getattr(gguf.MODEL_ARCH, plan.arch.gguf_name)]
    writer = gguf.GGUFWriter(None, arch_name)
    _metadata(writer, plan)
    for t in plan.tensors:
        quantized = t.qtype in (gguf.GGMLQuantizationType.BF16, gguf.GGMLQuantizationType.Q8_0)
        shape = gguf.quant_shape_to_byte_shape(t.shape, t.qtype) if quantized else t.shape
        dtype = {
            gguf.GGMLQuantizationType.F32: np.float32,
            gguf.GGMLQuantizationType.F16: np.float16,
        }.get(t.qtype, np.uint8)
        writer.add_tensor_info(t.name, shape, np.dtype(dtype), t.nbytes, raw_dtype=t.qtype)
    total = sum(t.nbytes for t in plan.tensors) or 1
    progress(f"writing {path.name} ({human_bytes(total)})")
    done, reported = 0, 0
    try:
        writer.write_header_to_file(path)
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        for t in plan.tensors:
            writer.write_tensor_data(_tensor_data(t, state, plan.cfg))
            done += t.nbytes
            fraction(done / total)
            if total >= LONG_WRITE and (percent := done * 10 // total * 10) > reported:
                reported = percent
                progress(f"writing {path.name}: {percent}%")
        writer.flush()
        assert writer.fout is not None
        for out in writer.fout:
            os.fsync(out.fileno())
    finally:
        writer.close()


def all_formats() -> tuple[str, ...]:
    from tuiwiz.after import quantize

    return (*FORMATS, *quantize.TOOL_FORMATS)


def prepare(fr: Any, fmt: str, folder: Path, progress: Callable[[str], None]) -> GgufPlan:
    """Every check before the slow work: the format (and llama-quantize for the k-quants), the
    architecture and tokenizer, and the free space in `folder` for the file to come."""
    from tuiwiz.after import quantize
    from tuiwiz.train import builders

    if fmt not in all_formats():
        raise TuiwizError(f"--gguf: '{fmt}' is not one of {', '.join(all_formats())}")
    if fmt in quantize.TOOL_FORMATS:
        quantize.tool()
        # llama-quantize reads a 16-bit file: bf16 when the weights are bf16, else f16.
        written = "bf16" if str(builders.model_dtype(fr.config)) == "torch.bfloat16" else "f16"
    else:
        written = fmt
    plan = plan_for(fr, written, progress)
    plan.fmt_requested = fmt
    needed = plan.size()
    if fmt in quantize.TOOL_FORMATS:
        parameters = sum(math.prod(t.shape) for t in plan.tensors)
        needed += quantize.upper_bound_bytes(parameters, fmt)
    check_space(folder, needed, f"the {fmt} GGUF file")
    return plan


def write_into(
    fr: Any,
    folder: Path,
    plan: GgufPlan,
    progress: Callable[[str], None],
    fraction: Callable[[float], None] = lambda done: None,
) -> None:
    """The merged model as `folder/model.gguf` (for a k-quant: a 16-bit file beside it, turned
    into the chosen type by llama-quantize and removed)."""
    from tuiwiz.after import quantize
    from tuiwiz.after.export import merged_model

    merged = merged_model(fr, None, progress, as_trained=True)
    target = folder / GGUF_FILE
    if plan.fmt_requested in quantize.TOOL_FORMATS:
        sixteen = folder / f".model-{plan.fmt}.gguf"
        write(plan, merged.state_dict(), sixteen, progress, lambda done: fraction(done * 0.5))
        del merged
        quantize.run(sixteen, target, plan.fmt_requested, progress)
        sixteen.unlink()
        fraction(1.0)
    else:
        write(plan, merged.state_dict(), target, progress, fraction)
