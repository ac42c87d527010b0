"""When the peak happens and what is alive then: activations, the LM head's tiles, the backward
pass's working buffers, the optimizer step. Everything in bytes for the whole batch.

The loss: tuiwiz trains with trl's SFTTrainer, which (trl 1.16) patches the model with a fused LM
head and never builds the (batch x sequence x vocabulary) logits that transformers' own
ForCausalLMLoss would upcast to float32 (source: trl/trainer/sft_trainer.py compute_loss calls
model(..., fused_lm_head=True); trl/kernels/chunked_logprob.py ChunkedLogProbFunction projects
[4096 tokens x 32768 vocabulary] tiles and keeps only per-token statistics). The estimate models
those tiles; the full logits path is modeled only when label smoothing forces trl back to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tuiwiz.estimate.activations import Activations
from tuiwiz.estimate.layers import LayerPlan
from tuiwiz.estimate.setup import RunSetup

# source: trl/kernels/chunked_logprob.py TOKEN_CHUNK_SIZE and trl/trainer/utils.py
# _CHUNKED_LOGPROB_CHUNK_SIZE (vocabulary columns per tile)
TOKEN_TILE = 4096
VOCAB_TILE = 32768
# Batch tensors the collator builds: input_ids, labels, attention_mask (int64) per token.
BATCH_TENSOR_BYTES = 3 * 8
# source: trl/models/activation_offloading.py get_act_offloading_ctx_manager(max_fwd_stash_size=5):
# the last five saved tensors stay on the GPU while their copies to CPU RAM finish.
OFFLOAD_STASH = 5


@dataclass(frozen=True)
class Peak:
    saved: int  # activations autograd keeps when the peak happens
    head: int  # LM head / loss buffers alive at the peak (saved statistics and tiles)
    transient: int  # backward working buffers: gradients in flight, dequantized weights
    phase: str  # where the peak is
    saved_full: int  # all layers' saved activations, without checkpointing (for advice)
    gathered: int = 0  # FSDP: unsharded parameters alive at the peak (parallel.gathered_by_phase)
    offloaded: int = 0  # activations kept in pinned CPU RAM instead (activation offloading)


def head_buffers(
    setup: RunSetup,
    plan: LayerPlan,
    vocab: int,
    head_in: int,
    lm_head_bytes: int,
    label_smoothing: bool,
) -> tuple[int, int, int]:
    """(saved, forward transient, backward transient) bytes of the LM head and loss."""
    tokens = setup.tokens
    valid = setup.batch * max(setup.seq - 1, 1)  # worst case: every label counts
    hidden = plan.hidden
    compute = setup.autocast_bytes or head_in
    if label_smoothing:
        # source: transformers/trainer_pt_utils.py LabelSmoother: full logits, log_softmax in
        # float32 (kept for backward), and its gradient of the same size
        logits = tokens * vocab * compute
        full32 = tokens * vocab * 4
        return full32, logits + full32, 2 * full32
    # source: trl/trainer/utils.py add_fused_lm_head: hidden_states[mask] copies the valid rows
    # (kept for backward with targets, log Z and entropy); ChunkedLogProbFunction.forward keeps
    # seven float32 statistics per token and one [4096 x 32768] tile in the compute dtype, plus
    # compute-dtype copies of a hidden chunk and a weight chunk when their dtypes differ.
    saved = valid * (hidden * head_in + 8 + 4 + 4 + 1)
    rows, cols = min(valid, TOKEN_TILE), min(vocab, VOCAB_TILE)
    tile = rows * cols * compute
    chunks = (rows * hidden * compute if compute != head_in else 0) + (
        cols * hidden * compute if compute != lm_head_bytes else 0
    )
    forward = tokens * hidden * head_in + tile + chunks + 7 * valid * 4
    # backward: the float32 gradient of the hidden rows, the tile and chunks again, then the
    # gradient scattered back into (batch, sequence, hidden)
    backward = valid * hidden * 4 + tile + chunks + tokens * hidden * head_in
    return saved, forward, backward


def eval_forward(
    setup: RunSetup, plan: LayerPlan, head_in: int, eval_batch: int, head_forward: int, dequant: int
) -> int:
    """Evaluation runs the forward pass without autograd on batches of
    per_device_eval_batch_size (TrainingArguments' default is 8): nothing is saved, but one
    layer's intermediates are alive at a time, the MLP's three inner-width tensors at the widest
    point (act(gate), up and their product), and the LM head's tiles."""
    tokens = eval_batch * setup.seq
    layer = tokens * (4 * plan.hidden * head_in + 3 * plan.inner * head_in)
    return max(layer + dequant, head_forward * eval_batch // max(setup.batch, 1))


def layer_backward(setup: RunSetup, plan: LayerPlan, act: Activations, dequant: int) -> int:
    """Working buffers while a layer's backward runs: the gradient of the residual stream and of
    its input, the MLP's intermediate gradients (three of inner width at once: of the product and
    of both its factors), and one dequantized weight (bitsandbytes' MatMul4Bit.backward
    dequantizes the full weight for grad_output @ W)."""
    grad = act.head_input_bytes
    return setup.tokens * (2 * plan.hidden * grad + 3 * plan.inner * grad) + dequant


def peak(
    setup: RunSetup,
    plan: LayerPlan,
    act: Activations,
    head: tuple[int, int, int],
    dequant: int,
    gathered: dict[str, int] | None = None,
) -> Peak:
    """The largest of the moments that can be the peak, with what is alive at that moment. The
    LM head's saved tensors are freed once its backward is done, before the layers' backward.
    `gathered`: with FSDP, the unsharded parameters alive at each moment, by moment name."""
    gathered = gathered or {}
    tokens = setup.tokens
    layers = [int(sum(c.values()) * tokens) + f for c, f in zip(act.per_layer, act.per_layer_fixed)]
    saved_all = sum(layers) + act.final_norm * tokens
    head_saved, head_fwd, head_bwd = head
    batch = tokens * BATCH_TENSOR_BYTES
    bwd = layer_backward(setup, plan, act, dequant)
    offloaded = 0
    if setup.offload:
        # Everything saved for backward goes to CPU RAM as the forward pass goes; the GPU keeps
        # the last few tensors until their copies finish (the stash) and, in backward, what the
        # node being computed brought back (trl OffloadActivations, unpack_tensor_with_streams).
        inputs = [x * tokens for x in act.layer_inputs]
        largest = max(layers, default=0)
        if setup.checkpointing:
            one = max([*inputs, act.final_norm * tokens], default=0)
            kept = min(len(inputs) + 1, OFFLOAD_STASH) * one + batch
            # the recomputed layer's input, and the next one's as its copy comes back
            layer_phase = ("layer recompute + backward", 2 * one + largest + batch, 0, bwd)
            offloaded = sum(inputs) + act.final_norm * tokens
        else:
            kept = largest + batch  # the stash holds a few of one layer's saved tensors
            layer_phase = ("last layer backward", largest + batch, 0, bwd)
            offloaded = saved_all
    elif setup.checkpointing:
        # Non-reentrant checkpointing keeps each layer's input and recomputes one layer's
        # activations at a time in backward (transformers GradientCheckpointingLayer,
        # torch.utils.checkpoint with use_reentrant=False).
        kept = sum(x * tokens for x in act.layer_inputs) + act.final_norm * tokens + batch
        layer_phase = ("layer recompute + backward", kept + max(layers, default=0), 0, bwd)
    else:
        # Everything stays saved until backward starts.
        kept = saved_all + batch
        layer_phase = ("last layer backward", kept, 0, bwd)
    moments = [
        ("LM head forward", kept, head_saved + head_fwd, 0),
        ("LM head backward", kept, head_saved + head_bwd, 0),
        layer_phase,
    ]
    phase, saved, head_bytes, transient = max(
        moments, key=lambda m: m[1] + m[2] + m[3] + gathered.get(m[0], 0)
    )
    return Peak(saved, head_bytes, transient, phase, saved_all, gathered.get(phase, 0), offloaded)
