"""Activation memory: the tensors autograd saves for the backward pass, layer by layer.

The walk below follows the forward pass of one decoder layer as transformers 5.x, peft 0.21 and
bitsandbytes 0.50 run it in tuiwiz's training path, and records every tensor an op saves:

- An op saves a tensor only when a gradient will need it (PyTorch's autograd saves inputs per
  derivative that is required): a frozen linear layer saves its weight, not its input; ops before
  the first LoRA adapter of layer 0 save nothing because nothing there requires grad.
- bitsandbytes' 4-bit matmul saves only the packed weight, not its input
  (source: bitsandbytes/autograd/_functions.py MatMul4Bit.forward: ctx.tensors = (None, B));
  the 8-bit one saves its input (MatMul8bitLt.forward: ctx.tensors = (CAt, subA, A)).
- A LoRA adapter saves the dropout mask (bool on CUDA), the dropout output (as input of lora_A)
  and lora_A's output (as input of lora_B) (source: peft/tuners/lora/bnb.py Linear4bit.forward,
  torch native_dropout). Under autocast, F.linear saves its bf16 copy of the input instead.
- After prepare_model_for_kbit_training the norms and embeddings are float32, so the residual
  stream and everything computed from it stays float32, even under bf16 autocast; 4-bit layers
  return their input's dtype (Linear4bit.forward: `.to(inp_dtype)`).
- Attention kernels (sdpa's flash / cuDNN / memory-efficient, flash-attn) save q, k, v, the
  output and a float32 logsumexp per head and token; eager attention saves the (B, heads, S, S)
  probabilities as well. With padding, sdpa gets a mask: k/v are repeated to all heads
  (transformers/integrations/sdpa_attention.py use_gqa_in_sdpa) and the boolean mask becomes a
  float bias per layer that the memory-efficient kernel keeps for backward.

tests/unit/test_estimate_activations.py checks this walk against the bytes PyTorch really saves
(torch.autograd.graph.saved_tensors_hooks) on the CPU for several configurations.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field

from tuiwiz.estimate.layers import LayerPlan
from tuiwiz.estimate.setup import RunSetup
from tuiwiz.inspect.arch import ArchSummary
from tuiwiz.inspect.lora import LoraPlan

_ids = itertools.count()


@dataclass
class Flow:
    """A tensor flowing through the layer: bytes per element, whether it requires grad."""

    nbytes: int
    grad: bool
    ident: int = field(default_factory=lambda: next(_ids))


@dataclass
class LayerWalk:
    setup: RunSetup
    plan: LayerPlan
    adapted: set[str]  # names (relative to the layer) of the linear layers with adapters
    terms: Counter = field(default_factory=Counter)  # term -> bytes per token
    fixed: Counter = field(default_factory=Counter)  # term -> bytes per layer, any batch size
    _saved: set[int] = field(default_factory=set)

    # --- helpers ------------------------------------------------------------------------------
    def save(self, term: str, nbytes: float, flow: Flow | None = None) -> None:
        """Record bytes per token; a tensor saved by several ops is counted once."""
        if flow is not None:
            if flow.ident in self._saved:
                return
            self._saved.add(flow.ident)
        self.terms[term] += nbytes

    def mask_bytes(self, elem: int) -> int:
        # source: torch native_dropout: CUDA keeps a bool mask, the CPU kernel one of the
        # input's dtype
        return 1 if self.setup.device == "cuda" else elem

    @property
    def r(self) -> int:
        return int(self.setup.lora.get("r", 0))

    @property
    def dropout(self) -> float:
        return float(self.setup.lora.get("lora_dropout", 0.0))

    # --- building blocks ----------------------------------------------------------------------
    def linear(self, rel: str, z: Flow) -> Flow:
        """A (quantized) linear layer, with its LoRA adapter when it has one."""
        s, ac, la = self.setup, self.setup.autocast_bytes, self.setup.adapter_bytes
        n_in, n_out = self.plan.widths.get(rel, (self.plan.hidden, self.plan.hidden))
        if s.quant == "8bit" and z.grad:
            self.save("8-bit layer inputs", n_in * z.nbytes, z)  # MatMul8bitLt keeps A
        base = z.nbytes if s.quant != "none" or ac is None else ac
        out = base if ac is None or base == 4 else ac
        adapted = rel in self.adapted
        if not adapted:
            return Flow(out, z.grad)
        # peft casts the input to the adapter's dtype unless autocast is on, and it asks
        # torch.is_autocast_enabled(), which only reports CUDA's autocast: on the CPU it casts.
        # source: peft/tuners/lora/bnb.py Linear4bit.forward (requires_conversion)
        converts = ac is None or s.device != "cuda"
        x = z
        if converts and z.nbytes != la:
            x = Flow(la, z.grad)
        d = x
        if self.dropout > 0:
            if x.grad:
                self.save("LoRA dropout masks", n_in * self.mask_bytes(x.nbytes))
            d = Flow(x.nbytes, x.grad)
        if ac is not None and d.nbytes != ac:
            self.save("LoRA inputs", n_in * ac)  # autocast's own copy, one per call
        else:
            self.save("LoRA inputs", n_in * d.nbytes, d)
        self.save("LoRA rank activations", self.r * (ac or la))
        if s.lora.get("use_dora"):
            # source: peft/tuners/lora/dora.py DoraLinearLayer.forward: the magnitude's gradient
            # needs base_result and lora_result (two multiplies keep them); with dropout,
            # base_result is recomputed as F.linear(x, dequantized W), which keeps the full
            # dequantized weight for backward, per layer.
            base_result = (ac or d.nbytes) if self.dropout > 0 else out
            self.save("DoRA results", n_out * (base_result + (ac or la)))
            if self.dropout > 0:
                self.fixed["DoRA dequantized weights"] += n_in * n_out * (ac or d.nbytes)
        return Flow(out, True)

    def norm(self, x: Flow, width: int, rows: int = 1) -> Flow:
        """RMSNorm (Llama style) or LayerNorm; `rows` norms of `width` per token (q/k norms)."""
        s = self.setup
        if x.grad:
            if self.plan.norm_kind == "rms" and s.liger:
                # source: liger_kernel/ops/rms_norm.py LigerRMSNormFunction.forward saves X as
                # given (no float32 copy) and the float32 rstd per row.
                self.save("norm inputs", rows * width * x.nbytes, x)
                self.save("norm statistics", rows * 4)
            elif self.plan.norm_kind == "rms":
                # source: LlamaRMSNorm.forward: pow(2) and the multiply keep the float32 input,
                # rsqrt keeps its (tokens, 1) output; weight * h keeps only the frozen weight.
                self.save("norm inputs", rows * width * 4, x if x.nbytes == 4 else None)
                self.save("norm statistics", rows * 4)
            else:  # native_layer_norm keeps its input, mean and rstd
                self.save("norm inputs", rows * width * x.nbytes, x)
                self.save("norm statistics", rows * 8)
        if self.plan.norm_kind == "rms" and not s.liger:
            return Flow(max(s.unquantized_param_bytes, x.nbytes), x.grad)
        return Flow(x.nbytes, x.grad)  # Liger's output has its input's dtype

    def attention(self, q: Flow, k: Flow, v: Flow) -> Flow:
        s, p = self.setup, self.plan
        grad = q.grad or k.grad or v.grad
        impl = s.attn
        # transformers casts float32 q/k/v to the half dtype flash-attn needs; autocast runs
        # sdpa and eager's matmuls in bf16
        dq = 2 if impl.startswith("flash_attention") else s.autocast_bytes or q.nbytes
        if not grad:
            return Flow(dq, False)
        # packing and padding-free batches: one long row, split by the position ids; sdpa and
        # eager get a block-diagonal mask over the whole row, flash-attn the sequence bounds.
        # One example alone gets no mask (transformers/masking_utils.py
        # find_packed_sequence_indices: a single sequence is not packed); a packed row may hold
        # several at any batch size.
        seq = s.seq * (s.batch if s.one_row else 1)
        joined = s.packing or (s.padding_free and s.batch > 1)
        masked = s.padded or (joined and not impl.startswith("flash"))
        if impl == "eager":
            # source: eager_attention_forward: matmul(q, repeat_kv(k)^T) keeps q and the
            # repeated k; softmax(dtype=float32) keeps its output; matmul(P, v) keeps P in q's
            # dtype (a second copy unless float32) and the repeated v.
            self.save("attention q/k/v/output", 3 * p.q_dim * dq)
            self.save("attention probabilities", p.heads * seq * (4 + (dq if dq != 4 else 0)))
            return Flow(dq, True)
        kv = p.q_dim if masked and not impl.startswith("flash") else p.kv_dim
        self.save("attention q/k/v/output", (p.q_dim + 2 * kv) * dq)
        # The kernels write the output as (batch, seq, heads, head_dim) and return a transposed
        # view, so the out projection's input is this same storage (no copy to save again).
        out = Flow(dq, True)
        self.save("attention q/k/v/output", p.q_dim * dq, out)
        self.save("attention logsumexp", p.heads * 4)
        if masked and impl == "sdpa":
            # the float bias sdpa builds from the boolean mask, padded to 16 columns, per layer
            self.save("attention mask bias", (-(-seq // 16) * 16) * dq)
        return out

    def residual_dropout(self, x: Flow) -> None:
        if self.plan.resid_dropout > 0 and x.grad:
            self.save("residual dropout masks", self.plan.hidden * self.mask_bytes(x.nbytes))

    # --- one layer ----------------------------------------------------------------------------
    def layer(self, x: Flow) -> Flow:
        p = self.plan
        h = self.norm(x, p.hidden)
        projections = [self.linear(rel, h) for rel in p.attn_in] or [h]
        grad = any(f.grad for f in projections)
        dtype = max(f.nbytes for f in projections)
        q, k, v = Flow(dtype, grad), Flow(dtype, grad), Flow(dtype, grad)
        if p.qk_norm:  # Qwen3: RMSNorm over head_dim of q and k before RoPE
            head_dim = p.q_dim // p.heads
            self.norm(q, head_dim, rows=p.heads)
            self.norm(k, head_dim, rows=p.kv_heads)
        # RoPE keeps only cos / sin, shared by all layers; q*cos + rotate(q)*sin is new memory
        # that the attention kernel then keeps.
        attn = self.attention(q, k, v)
        for rel in p.attn_out or ["o_proj"]:
            attn = self.linear(rel, attn)
        self.residual_dropout(attn)
        x2 = Flow(max(x.nbytes, attn.nbytes), x.grad or attn.grad)
        h2 = self.norm(x2, p.hidden)
        ups = [self.linear(rel, h2) for rel in p.mlp_in] or [h2]
        inner = p.inner
        if p.gated:
            g, u = ups[0], ups[-1] if len(ups) > 1 else Flow(ups[0].nbytes, ups[0].grad)
            saves = 1 if self.setup.liger else p.activation_saves
            if g.grad:
                self.save("MLP activations", saves * inner * g.nbytes, g)
            # act(g) * u: the multiply keeps each factor for the other's gradient. Liger's
            # SwiGLU kernel keeps g and u only and recomputes act(g) in backward (source:
            # liger_kernel/ops/swiglu.py LigerSiLUMulFunction.forward: save_for_backward(a, b)).
            if u.grad and not self.setup.liger:
                self.save("MLP activations", inner * g.nbytes)  # act(g)
            if g.grad:
                self.save("MLP activations", inner * u.nbytes, u)
            hidden = Flow(max(g.nbytes, u.nbytes), g.grad or u.grad)
        else:
            g = ups[0]
            if g.grad:
                self.save("MLP activations", p.activation_saves * inner * g.nbytes, g)
            hidden = Flow(g.nbytes, g.grad)
        down = hidden
        for rel in p.mlp_out or ["down_proj"]:
            down = self.linear(rel, down)
        self.residual_dropout(down)
        return Flow(max(x2.nbytes, down.nbytes), x2.grad or down.grad)


@dataclass(frozen=True)
class Activations:
    per_layer: list[Counter]  # bytes per token saved by each layer (no checkpointing)
    per_layer_fixed: list[int]  # bytes per layer that do not scale with tokens (DoRA weights)
    final_norm: int  # bytes per token saved by the final norm
    layer_inputs: list[int]  # bytes per token of each layer's input (checkpoints)
    head_input_bytes: int  # bytes per element of the hidden states reaching the LM head
    residual_grad: bool


def walk(
    setup: RunSetup, plan: LayerPlan, adapted: list[set[str]], input_grad: bool
) -> Activations:
    """Saved bytes per token of every layer, given the adapted modules of each layer and whether
    the embeddings' output requires grad."""
    x = Flow(setup.residual_bytes, input_grad)
    per_layer, fixed, inputs = [], [], []
    for names in adapted:
        inputs.append(plan.hidden * x.nbytes)
        w = LayerWalk(setup, plan, names)
        x = w.layer(x)
        per_layer.append(w.terms)
        fixed.append(sum(w.fixed.values()))
    final = LayerWalk(setup, plan, set())
    out = final.norm(x, plan.hidden)
    return Activations(per_layer, fixed, sum(final.terms.values()), inputs, out.nbytes, x.grad)


def input_requires_grad(setup: RunSetup, summary: ArchSummary, lora: LoraPlan) -> bool:
    """Whether the embeddings' output requires grad: with a trained embedding, or with
    checkpointing, where trl's SFTTrainer calls model.enable_input_require_grads() for PEFT
    models (source: trl/trainer/sft_trainer.py, "When using gradient checkpointing with PEFT")."""
    embed = summary.input_embedding
    trained = any(m.name == embed for m in (*lora.adapted, *lora.saved))
    return trained or setup.checkpointing
