"""Plain-language explanations of every configuration key.

The single source of help text: the TUI shows an entry beside the focused field, `tuiwiz explain
KEY` prints one, and saved presets carry each key's `summary` as a TOML comment.

Each `default` starts with the value tuiwiz uses, then names the library default where it differs
(checked against transformers 5.24, peft 0.21, bitsandbytes 0.50 and trl 1.16). Standard library
only: the TUI imports this at startup.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Explanation:
    key: str  # "section.key", e.g. "training.learning_rate"
    title: str  # short human name, e.g. "Learning rate"
    summary: str  # one line, <= 90 chars: the comment after the key in preset files
    body: str  # plain words, 2-6 short sentences: what it does, the trade-off, when to change it
    range: str  # a sensible range or the allowed values
    default: str  # the value tuiwiz uses, then the library default where it differs


_ENTRIES = (
    # --- top level -------------------------------------------------------------------------------
    Explanation(
        key="preset.name",
        title="Preset name",
        summary="Short name of this preset; also its file name when saved",
        body=(
            "A short label for this configuration, shown when you list or pick presets, e.g. "
            "qlora-7b-chat. A saved preset is stored as NAME.toml, so use letters, digits, '.', "
            "'_' or '-' (at most 64 characters). It has no effect on training."
        ),
        range='letters, digits, ".", "_", "-"; up to 64 characters, e.g. "qlora-7b-chat"',
        default="untitled",
    ),
    Explanation(
        key="preset.description",
        title="Preset description",
        summary="One line saying what this preset is for (model size, GPU, kind of data)",
        body=(
            "Free text shown next to the preset's name in lists, so you and others know when to "
            'use it, e.g. "QLoRA for 7B chat models on one 24 GB GPU". It has no effect on '
            "training."
        ),
        range="free text, one line",
        default="empty",
    ),
    Explanation(
        key="preset.schema_version",
        title="Preset format version",
        summary="Version of the preset file format; written by tuiwiz, do not edit",
        body=(
            "Records which version of tuiwiz's preset format the file uses, so tuiwiz can tell "
            "a preset it understands from one written for a different version. tuiwiz writes it "
            "when saving a preset; a file with a version this tuiwiz does not read is rejected "
            "with a clear error instead of being misread."
        ),
        range="1 (the only version so far)",
        default="1",
    ),
    # --- model -----------------------------------------------------------------------------------
    Explanation(
        key="model.name_or_path",
        title="Base model",
        summary="Hub model id (org/name) or local folder of the base model to fine-tune",
        body=(
            "The pretrained causal language model the LoRA adapters are trained on top of, e.g. "
            '"Qwen/Qwen2.5-0.5B-Instruct", or a local folder with config.json and weights. Pick '
            "an instruct/chat variant to build an assistant, a base variant for plain text or a "
            "new prompt style. Size decides memory: each billion parameters needs about 2 GB in "
            "16-bit and about 0.5-0.7 GB in 4-bit, before activations and optimizer. Start small "
            "(0.5B-3B) to check your data and settings, then scale up."
        ),
        range="a Hub model id or a local path to a causal LM (AutoModelForCausalLM)",
        default="none (required)",
    ),
    Explanation(
        key="model.revision",
        title="Model revision",
        summary="Branch, tag or commit hash of the model repo to download",
        body=(
            "Pins which version of the model repository is downloaded. A full commit hash makes "
            "the run reproducible even if the authors later change the weights, tokenizer or "
            "chat template. Leave it at main unless you need an exact earlier version or a "
            "branch. Ignored for local folders."
        ),
        range="a branch name, a tag, or a 40-character commit hash",
        default="main (also Hugging Face's default)",
    ),
    Explanation(
        key="model.attn_implementation",
        title="Attention implementation",
        summary="Attention kernel: sdpa (default, works everywhere), eager, or flash_attention_2",
        body=(
            "Chooses the code that computes attention; results agree up to rounding, speed and "
            "memory differ. sdpa is PyTorch's built-in scaled_dot_product_attention: fast, memory "
            "efficient and available everywhere. flash_attention_2 is often fastest on Ampere or "
            "newer NVIDIA GPUs in bf16/fp16 but needs the flash-attn package; flash_attention_3 "
            "targets Hopper GPUs (H100). eager is the plain reference code: slowest, and its "
            "memory grows with the square of the sequence length, but a few models need it. "
            "A flash kernel where it cannot run is refused before the run starts."
        ),
        range="sdpa | eager | flash_attention_2 | flash_attention_3",
        default="sdpa (tuiwiz); transformers also picks sdpa when unset if the model supports it",
    ),
    Explanation(
        key="model.trust_remote_code",
        title="Trust remote code",
        summary="Run Python code from the model repo: a security risk, only for repos you trust",
        body=(
            "Some Hub models ship their own modelling code instead of using the code built into "
            "transformers. Turning this on downloads and runs that Python code on your machine "
            "with your permissions, so a malicious or compromised repository can do anything you "
            "can. Leave it off; turn it on only for a repository you trust, ideally with a pinned "
            "revision so the code cannot change under you. Popular architectures (Llama, "
            "Mistral, Qwen, Gemma, Phi) do not need it with current transformers."
        ),
        range="true | false",
        default="false (also Hugging Face's default)",
    ),
    Explanation(
        key="model.torch_dtype",
        title="Model dtype",
        summary="Precision of the non-quantized weights: auto, bfloat16, float16 or float32",
        body=(
            "The number format the weights are loaded in; with 4-bit or 8-bit loading it applies "
            "to the parts left unquantized, such as embeddings and norms. With auto, tuiwiz picks "
            "the compute dtype, not config.json's: bnb_4bit_compute_dtype when loading in 4-bit, "
            "else bfloat16 on a CUDA GPU that supports it (float16 on one that does not), and "
            "float32 on the CPU. bfloat16 (2 bytes per parameter) is the safe choice on Ampere "
            "or newer GPUs; float16 can overflow; float32 (4 bytes) is for CPU or debugging."
        ),
        range="auto | bfloat16 | float16 | float32",
        default="auto (tuiwiz picks the compute dtype; transformers 5.x: config.json's dtype)",
    ),
    # --- quantization ----------------------------------------------------------------------------
    Explanation(
        key="quantization.load_in_4bit",
        title="Load in 4-bit (QLoRA)",
        summary="Store the frozen base weights in 4 bits (QLoRA): about 1/4 the memory of 16-bit",
        body=(
            "Quantizes the base model's linear layers to 4 bits with bitsandbytes while loading; "
            "the LoRA adapters still train in 16/32-bit. This is QLoRA (Dettmers et al. 2023), "
            "which fine-tuned a 65B model on one 48 GB GPU and matched 16-bit fine-tuning in the "
            "paper's experiments. The cost is slower steps (weights are dequantized for every "
            "matmul) and a small quality loss; it needs a GPU bitsandbytes supports (NVIDIA CUDA "
            "is the well-trodden path). Turn it off if the 16-bit model fits comfortably."
        ),
        range="true | false (not together with load_in_8bit)",
        default="true (tuiwiz); Hugging Face: false",
    ),
    Explanation(
        key="quantization.load_in_8bit",
        title="Load in 8-bit",
        summary="Store the frozen base weights in 8 bits (LLM.int8): half the memory of 16-bit",
        body=(
            "Loads the linear layers with bitsandbytes' LLM.int8() (Dettmers et al. 2022), which "
            "keeps rare outlier features in 16-bit to preserve quality. It halves weight memory "
            "versus 16-bit with quality closer to 16-bit than 4-bit, but training is often "
            "noticeably slower. 4-bit QLoRA is the more common choice for fine-tuning; 8-bit is "
            "a middle ground. Cannot be combined with load_in_4bit."
        ),
        range="true | false (not together with load_in_4bit)",
        default="false (also Hugging Face's default)",
    ),
    Explanation(
        key="quantization.bnb_4bit_quant_type",
        title="4-bit data type",
        summary="4-bit format: nf4 (QLoRA's choice, better for LLM weights) or fp4",
        body=(
            "Chooses the 4-bit number format. nf4 (4-bit NormalFloat, QLoRA: Dettmers et al. "
            "2023) places its 16 levels at quantiles of a normal distribution, which the paper "
            "shows is information-theoretically optimal for normally distributed weights, as "
            "pretrained weights roughly are; it beat fp4 in their experiments. fp4 is a plain "
            "4-bit float. Use nf4 unless you are reproducing a run that used fp4. Only used with "
            "load_in_4bit."
        ),
        range="nf4 | fp4",
        default="nf4 (tuiwiz); Hugging Face: fp4",
    ),
    Explanation(
        key="quantization.bnb_4bit_use_double_quant",
        title="Double quantization",
        summary="Also quantize the quantization constants: saves ~0.37 bits/param (~3 GB at 65B)",
        body=(
            "4-bit weights are stored in blocks of 64, each with a 32-bit scale constant: 32/64 = "
            "0.5 extra bits per parameter. Double quantization stores those constants in 8 bits "
            "(in blocks of 256), cutting the overhead to 8/64 + 32/(64 x 256) = 0.127 bits, a "
            "saving of about 0.373 bits per parameter: roughly 3 GB on a 65B model, 0.3 GB on a "
            "7B one (QLoRA: Dettmers et al. 2023). The paper found no loss in quality and the "
            "speed cost is small, so keep it on with 4-bit loading."
        ),
        range="true | false (only used with load_in_4bit)",
        default="true (tuiwiz); Hugging Face: false",
    ),
    Explanation(
        key="quantization.bnb_4bit_compute_dtype",
        title="4-bit compute dtype",
        summary="Dtype of the matmuls on 4-bit weights: bfloat16 on Ampere+ GPUs, float16 on older",
        body=(
            "4-bit weights cannot be multiplied directly: each layer dequantizes them to this "
            "dtype and does the matrix multiply in it. Use bfloat16 on NVIDIA Ampere or newer "
            "(RTX 30xx/40xx, A100, H100), float16 on older GPUs such as the T4 or V100, which "
            "lack fast bfloat16, and float32 on CPU or to debug numerical problems, at a large "
            "speed cost. Left unset, transformers computes in float32, which is slow. With "
            "torch_dtype = auto, tuiwiz also loads the unquantized weights in this dtype."
        ),
        range="bfloat16 | float16 | float32",
        default="bfloat16 (tuiwiz); Hugging Face: float32 when unset",
    ),
    Explanation(
        key="quantization.upcast_unquantized",
        title="Upcast unquantized weights",
        summary="float32 embeddings, LM head and norms (peft's default); false keeps them in bf16",
        body=(
            "With 4-bit or 8-bit loading, peft's prepare_model_for_kbit_training casts every "
            "weight left unquantized (embeddings, LM head, norms) to float32, and with them the "
            "hidden states between layers. For Llama-3.1-8B that is 1.05 billion parameters: "
            "3.9 GiB in float32 instead of 2.0 GiB in bfloat16, and the per-layer inputs that "
            "checkpointing keeps double too. false keeps them in the model's dtype (torch_dtype), "
            "as a 16-bit LoRA run does: the frozen weights hold the same numbers, only the sums "
            "between layers round to bfloat16. Losses agree closely, not bit for bit."
        ),
        range="true | false",
        default="true (peft's prepare_model_for_kbit_training upcasts); tuiwiz's own key",
    ),
    # --- lora ------------------------------------------------------------------------------------
    Explanation(
        key="lora.r",
        title="LoRA rank",
        summary="LoRA rank: size of the adapter matrices; higher = more capacity, memory and time",
        body=(
            "LoRA (Hu et al. 2021) freezes each target weight matrix W and learns a low-rank "
            "update B x A, where A is r x d_in and B is d_out x r, so each adapted layer adds "
            "r x (d_in + d_out) trainable parameters. A higher rank can learn more but trains and "
            "stores more; the LoRA paper found ranks as small as 1-8 already work for many tasks. "
            "8-16 suits most instruction tuning; try 32-64 for harder tasks or lots of data "
            "(QLoRA used 64). When you change r, keep lora_alpha/r fixed or use rsLoRA."
        ),
        range="1 to 256; 8-16 typical, 32-64 for harder tasks",
        default="16 (tuiwiz); PEFT: 8",
    ),
    Explanation(
        key="lora.lora_alpha",
        title="LoRA alpha",
        summary="Scales the adapter's update by alpha/r (alpha/sqrt(r) with rsLoRA)",
        body=(
            "The adapter's output is multiplied by lora_alpha / r: with r = 16 and alpha = 32 the "
            "update is scaled by 2, with alpha = 16 by 1. Changing alpha acts much like changing "
            "the learning rate of the adapters (Hu et al. 2021), so change one at a time. Common "
            "rules of thumb are alpha = r or alpha = 2 x r; keep the ratio when you change r. "
            "With use_rslora the scale is alpha / sqrt(r) instead (Kalajdzievski 2023): r = 16, "
            "alpha = 16 gives 16 / 4 = 4."
        ),
        range="1 to 512; usually r or 2 x r",
        default="32 (tuiwiz); PEFT: 8",
    ),
    Explanation(
        key="lora.lora_dropout",
        title="LoRA dropout",
        summary="Dropout on the adapters' input: regularization against overfitting small data",
        body=(
            "During training, randomly zeroes this fraction of the inputs to each LoRA adapter "
            "(the frozen path is unaffected), which discourages memorizing the training set. "
            "It helps most with small datasets or several epochs; with large datasets 0 is fine "
            "and slightly faster. QLoRA (Dettmers et al. 2023) used 0.1 for 7B-13B models and "
            "0.05 for 33B-65B."
        ),
        range="0.0 to 0.3; 0.05-0.1 common",
        default="0.05 (tuiwiz); PEFT: 0.0",
    ),
    Explanation(
        key="lora.target_modules",
        title="Target modules",
        summary='Which layers get adapters: module names (q_proj, v_proj, ...) or "all-linear"',
        body=(
            'Names of the linear layers that get LoRA adapters, e.g. ["q_proj", "v_proj"] in '
            'Llama-style models (a name matches the end of a module\'s path), or "all-linear" '
            "for every linear layer except the output head. Attention-only (q_proj, v_proj) was "
            "the original LoRA setup (Hu et al. 2021) and trains the fewest parameters. Adding "
            "the MLP layers (gate_proj, up_proj, down_proj) costs more memory and time but learns "
            "more: the QLoRA paper (Dettmers et al. 2023) found adapters on all linear layers "
            "were needed to match full fine-tuning."
        ),
        range='"all-linear", or a list of module names such as ["q_proj", "k_proj", "v_proj"]',
        default="all-linear (tuiwiz); PEFT: unset, a per-model list (q_proj, v_proj for Llama)",
    ),
    Explanation(
        key="lora.bias",
        title="Train biases",
        summary="Also train bias terms: none (usual), lora_only, or all",
        body=(
            "Whether bias vectors train alongside the adapters. none trains no biases and is what "
            "almost everyone uses; all trains every bias in the model; lora_only trains only the "
            "biases of the adapted layers. With anything but none the base model's biases change "
            "too, so disabling the adapter no longer gives back the original model. Many modern "
            "LLMs (e.g. Llama) have no biases in their linear layers, so it often does nothing."
        ),
        range="none | lora_only | all",
        default="none (also PEFT's default)",
    ),
    Explanation(
        key="lora.use_rslora",
        title="Rank-stabilized LoRA",
        summary="rsLoRA: scale by alpha/sqrt(r) instead of alpha/r so large ranks keep learning",
        body=(
            "Changes the adapter scaling from alpha / r to alpha / sqrt(r) (rsLoRA, Kalajdzievski "
            "2023). With alpha / r the update shrinks as r grows, so large ranks learn slowly and "
            "barely beat small ones; the paper shows alpha / sqrt(r) keeps learning stable across "
            "ranks, so higher ranks actually help. Worth turning on at r = 32 or more. With the "
            "same alpha it makes updates sqrt(r) times larger (4x at r = 16), so you may need a "
            "lower alpha or learning rate."
        ),
        range="true | false",
        default="false (also PEFT's default)",
    ),
    Explanation(
        key="lora.use_dora",
        title="DoRA",
        summary="DoRA: train weight magnitude and direction separately; often better, but slower",
        body=(
            "Weight-Decomposed Low-Rank Adaptation (DoRA, Liu et al. 2024) splits each weight "
            "into a magnitude vector and a direction: LoRA updates the direction, and the "
            "magnitude is trained separately. The paper reports consistent gains over LoRA at the "
            "same rank, especially at low ranks. It needs extra compute and memory, so steps are "
            "slower; merging the adapter into the model removes the overhead for inference."
        ),
        range="true | false",
        default="false (also PEFT's default)",
    ),
    Explanation(
        key="lora.modules_to_save",
        title="Fully trained modules",
        summary="Extra modules trained in full and saved with the adapter, e.g. embed_tokens",
        body=(
            "Modules listed here are trained completely (not through a low-rank adapter) and "
            "stored in the adapter. This is needed when you add new tokens to the tokenizer, "
            "such as a chat template's special tokens: the embeddings (embed_tokens) and output "
            "head (lm_head) must then learn them. Each listed module is copied and fully trained: "
            "an 8B model's embeddings (128,256 tokens x 4,096) are 128,256 x 4,096 x 2 bytes = "
            "1.05 GB per copy in 16-bit, plus gradients and optimizer state, and the adapter "
            "file grows by as much. Leave empty for ordinary fine-tuning."
        ),
        range='a list of module names, e.g. ["embed_tokens", "lm_head"]',
        default="empty (tuiwiz); PEFT: none",
    ),
    # --- data ------------------------------------------------------------------------------------
    Explanation(
        key="data.path",
        title="Dataset",
        summary="Your data: a .jsonl/.json/.csv/.parquet/.txt file, a folder, or a Hub dataset id",
        body=(
            "Where the training examples come from: a local file (JSON Lines, JSON, CSV, Parquet "
            "or plain text), a folder of such files, or a Hugging Face Hub dataset id such as "
            '"tatsu-lab/alpaca". JSON Lines, one JSON object per line, is the easiest to write '
            "by hand. A relative path in a preset file is relative to that file; given with "
            "--set or typed here, to the working directory. A run records it absolute, with a "
            "fingerprint of the data: resume and eval refuse data that changed since. "
            "The quality and consistency of these examples matter more than any other setting."
        ),
        range="a file path, a folder, or an org/name Hub dataset id",
        default="none (required)",
    ),
    Explanation(
        key="data.format",
        title="Dataset format",
        summary="Row layout: auto, alpaca, messages, sharegpt, prompt_completion or text",
        body=(
            "How a row becomes a training example; auto picks a format from the column names. "
            "alpaca: instruction, output, and optional input and system columns. messages: a "
            "messages column with a list of {role, content} turns (system, user, assistant). "
            "sharegpt: a conversations column with {from, value} turns (from = human, gpt or "
            "system). These three become conversations rendered with the model's chat template; "
            "prompt_completion has prompt and completion columns, and text a single text column "
            "of raw text."
        ),
        range="auto | alpaca | messages | sharegpt | prompt_completion | text",
        default="auto",
    ),
    Explanation(
        key="data.split",
        title="Dataset split",
        summary="Which split of the dataset to train on, usually train",
        body=(
            "Datasets can have several splits, such as train and test; this picks the one used "
            "for training. Local files have a single split called train. To hold out part of it "
            "for evaluation use data.validation_split, and to use fewer rows data.max_samples."
        ),
        range="a split name the dataset has, usually train",
        default="train",
    ),
    Explanation(
        key="data.subset",
        title="Dataset subset",
        summary="Configuration (subset) name, for Hub datasets that have several",
        body=(
            "Some Hub datasets bundle several configurations, e.g. one per language or task, and "
            "need one picked (the name argument of datasets.load_dataset). The dataset's page on "
            "the Hub lists them. Leave empty for datasets with a single configuration and for "
            "local files."
        ),
        range="a configuration name listed on the dataset's Hub page",
        default="empty (the dataset's only or default configuration)",
    ),
    Explanation(
        key="data.columns",
        title="Column mapping",
        summary='Map the format\'s expected column names to yours, e.g. {output = "answer"}',
        body=(
            "Use this when your data has the right structure but other column names. Keys are "
            "the names the format expects, values the names in your data: for alpaca, "
            '{instruction = "question", output = "answer"} reads the instruction from your '
            "question column and the answer from answer. Unmapped columns keep their expected "
            "names."
        ),
        range="a table of expected name = your column name",
        default="empty (the format's standard column names)",
    ),
    Explanation(
        key="data.max_seq_length",
        title="Max sequence length",
        summary="Max tokens per example; longer ones are cut off. Memory grows with it",
        body=(
            "Each example is tokenized and truncated to at most this many tokens, so anything "
            "past it is never trained on: make sure most answers fit. Activation memory grows "
            "about linearly with it under sdpa or flash attention (with the square of it under "
            "eager), so lowering it is one of the strongest memory savers. Pick it from your "
            "data, a little above the length of most examples. With packing it is the length of "
            "each packed block."
        ),
        range="128 up to the model's context length; 512-2048 typical",
        default="1024 (tuiwiz; also TRL SFTConfig's max_length)",
    ),
    Explanation(
        key="data.validation_split",
        title="Validation split",
        summary="Fraction of rows held out to measure validation loss (0 = none)",
        body=(
            "Sets aside this fraction of the data to compute a loss on examples the model never "
            "trains on. It is the simplest way to spot overfitting: if training loss keeps "
            "falling while validation loss rises, train fewer steps or epochs. 0.05-0.1 is "
            "typical; with very small datasets you may prefer to train on every example. "
            "Validation loss is computed only when training.eval_strategy is not no."
        ),
        range="0.0 up to (not including) 1; 0.05-0.1 typical",
        default="0.0 (no validation set)",
    ),
    Explanation(
        key="data.train_on_prompt",
        title="Train on prompt",
        summary="Also learn the prompt; false = loss only on the answer (prompt tokens masked)",
        body=(
            "When false, the prompt (system message, instruction, user turns) is masked out of "
            "the loss, so the model is graded only on producing the answer; it still reads the "
            "prompt as context. That is usually better for instruction tuning: the model should "
            "learn to answer, not to write questions. Set true when the prompts themselves are "
            "text worth learning. The text format has no prompt, so all of it is trained on."
        ),
        range="true | false",
        default="false",
    ),
    Explanation(
        key="data.packing",
        title="Packing",
        summary="Pack several short examples into each max_seq_length block to avoid padding",
        body=(
            "Without packing, each batch is padded to its longest example and the pad tokens "
            "waste compute. Packing fills blocks of max_seq_length tokens with several examples, "
            "which can make training much faster on datasets of short examples. TRL's default "
            "best-fit packing keeps each example whole and masks attention so packed examples do "
            "not see each other. Steps then count blocks, not examples, so there are fewer steps "
            "per epoch."
        ),
        range="true | false",
        default="false (tuiwiz and TRL)",
    ),
    Explanation(
        key="data.max_samples",
        title="Max samples",
        summary="Use at most this many rows (0 = all); handy for quick test runs",
        body=(
            "Caps how many rows of the dataset are used. A few hundred rows make a smoke test "
            "that checks formatting, memory and speed in minutes before a long run. Leave it at "
            "0 for real training: more good data is usually the biggest improvement you can make."
        ),
        range="0 (all rows) or a positive integer",
        default="0 (use every row)",
    ),
    Explanation(
        key="data.num_proc",
        title="Data processes",
        summary="Processes that tokenize the data before training; auto = the cores, up to 8",
        body=(
            "Before the first step, every example is rendered and tokenized once (then cached, "
            "so the next run on the same data and tokenizer starts at once). This many processes "
            "share that work, like LLaMA-Factory's preprocessing_num_workers or datasets.map's "
            "num_proc. auto uses the CPU cores this process may use, up to 8, and one process "
            "for small datasets (under 10,000 examples), where starting processes costs more "
            "than it saves. Each process holds a copy of the tokenizer; the tokens are the same "
            "whatever the number."
        ),
        range='"auto" or a number of processes >= 1',
        default="auto (the available cores, at most 8; 1 below 10,000 examples)",
    ),
    # --- training --------------------------------------------------------------------------------
    Explanation(
        key="training.per_device_train_batch_size",
        title="Batch size per GPU",
        summary="Examples per GPU per forward/backward pass: the main knob for GPU memory",
        body=(
            "How many examples go through the model together on each GPU in one pass. Activation "
            "memory grows about linearly with it (and with max_seq_length), so lower it first "
            "when you run out of memory and raise gradient_accumulation_steps to keep the "
            "effective batch. Larger batches use the GPU more efficiently until it is saturated."
        ),
        range="1 to 64; 1-8 typical for LLM fine-tuning",
        default="4 (tuiwiz); Hugging Face: 8",
    ),
    Explanation(
        key="training.per_device_eval_batch_size",
        title="Eval batch size per GPU",
        summary="Examples per GPU during evaluation; often fits a larger value than training",
        body=(
            "Batch size used to compute validation loss. Evaluation keeps no gradients or "
            "optimizer state, so it usually fits a larger batch than training. It changes only "
            "speed and memory, never the result; lower it if evaluation runs out of memory."
        ),
        range="1 to 128",
        default="8 (Hugging Face)",
    ),
    Explanation(
        key="training.gradient_accumulation_steps",
        title="Gradient accumulation",
        summary="Passes summed per optimizer step: a bigger effective batch with no extra memory",
        body=(
            "Runs this many forward/backward passes and adds up their gradients before one "
            "optimizer update, simulating a bigger batch without its memory. Effective batch = "
            "per-device batch x accumulation steps x number of GPUs, e.g. 4 x 4 x 1 = 16 "
            "examples per update. The cost is fewer updates per epoch, each taking that many "
            "passes; step counts such as logging_steps and save_steps count updates. An "
            "effective batch of 16-64 is common for LoRA."
        ),
        range="1 to 128; choose so the effective batch is 16-64",
        default="4 (tuiwiz); Hugging Face: 1",
    ),
    Explanation(
        key="training.num_train_epochs",
        title="Epochs",
        summary="Passes over the whole dataset; ignored when max_steps > 0",
        body=(
            "One epoch means every training example has been seen once. 1-3 epochs is typical "
            "for LoRA; more on a small dataset quickly leads to memorized answers, which shows up "
            "as rising validation loss. Fractions such as 1.5 are allowed. Ignored when "
            "max_steps is greater than 0."
        ),
        range="0.1 to 10; 1-3 typical",
        default="1.0 (tuiwiz); Hugging Face: 3.0",
    ),
    Explanation(
        key="training.max_steps",
        title="Max steps",
        summary="Total optimizer steps; > 0 overrides num_train_epochs (-1 = train by epochs)",
        body=(
            "Sets the training length in optimizer updates instead of epochs; when it is greater "
            "than 0, num_train_epochs is ignored. Each step uses one effective batch, so steps x "
            "effective batch = examples seen. Use it for quick experiments (e.g. 50 steps), to "
            "compare runs with exactly equal compute, or for streaming datasets of unknown "
            "length. Leave at -1 to train by epochs."
        ),
        range="-1 (use epochs) or a positive integer",
        default="-1 (tuiwiz and Hugging Face: train by epochs)",
    ),
    Explanation(
        key="training.gradient_checkpointing",
        title="Gradient checkpointing",
        summary="Recompute activations during backward: saves much memory, ~20-30% slower",
        body=(
            "Instead of storing every layer's intermediate activations for the backward pass, "
            "keeps a few and recomputes the rest when needed. This cuts activation memory, often "
            "the largest share with long sequences, for roughly 20-30% more compute per step. "
            "Keep it on unless memory is plentiful and you want speed. transformers 5.x calls it "
            "activation_checkpointing: a preset may use either name (one of them), and "
            "tuiwiz passes it on under the name the installed transformers uses."
        ),
        range="true | false",
        default="true (tuiwiz and TRL SFTConfig); Hugging Face TrainingArguments: false",
    ),
    Explanation(
        key="training.learning_rate",
        title="Learning rate",
        summary="Optimizer step size, the most important setting; 1e-4 to 2e-4 suits LoRA",
        body=(
            "How far each optimizer update moves the trainable weights. Too high and the loss "
            "spikes or turns NaN; too low and the model barely learns in the steps you give it. "
            "LoRA adapters need higher rates than full fine-tuning (about 1e-5 to 5e-5): 1e-4 to "
            "2e-4 is typical, and QLoRA (Dettmers et al. 2023) used 2e-4 for 7B-13B models and "
            "1e-4 for 33B-65B. If the loss is unstable, halve it; if it falls very slowly, try "
            "doubling it."
        ),
        range="1e-6 to 1e-3; 1e-4 to 2e-4 typical for LoRA",
        default="2e-4 (tuiwiz); Hugging Face: 5e-5; TRL SFTConfig: 2e-5",
    ),
    Explanation(
        key="training.lr_scheduler_type",
        title="LR schedule",
        summary="How the learning rate changes over training: linear, cosine, constant, ...",
        body=(
            "After warmup, the learning rate follows this curve. linear decays in a straight line "
            "to 0; cosine decays along a half cosine, staying high longer, then dropping; "
            "constant never changes and ignores warmup; constant_with_warmup is constant after "
            "warmup. A decaying schedule (cosine or linear) usually gives a slightly better final "
            "model; constant suits runs of unknown length (QLoRA used it). Others: "
            "cosine_with_restarts, polynomial, inverse_sqrt, cosine_with_min_lr, "
            "warmup_stable_decay, reduce_lr_on_plateau."
        ),
        range="linear | cosine | constant | constant_with_warmup | cosine_with_restarts | ...",
        default="cosine (tuiwiz); Hugging Face: linear",
    ),
    Explanation(
        key="training.warmup_ratio",
        title="Warmup ratio (retired)",
        summary="Removed in transformers 5.x: set warmup_steps to a fraction instead, e.g. 0.03",
        body=(
            "Used to give the fraction of training over which the learning rate ramps up from 0. "
            "transformers 5.x no longer has this argument, so tuiwiz rejects it in presets: put "
            "the same fraction in training.warmup_steps, where a value below 1 means a fraction "
            "of all steps (0.03 = the first 3%). Old recipes' warmup_ratio = 0.03 becomes "
            "warmup_steps = 0.03."
        ),
        range="not accepted; use warmup_steps in [0, 1)",
        default="none: not a transformers 5.x argument (4.x default was 0.0)",
    ),
    Explanation(
        key="training.warmup_steps",
        title="Warmup",
        summary="LR ramp-up from 0: a step count, or below 1 a fraction of all steps (0.03 = 3%)",
        body=(
            "Over these first optimizer steps the learning rate rises linearly from 0 to "
            "learning_rate, which avoids large, destabilizing updates while the optimizer's "
            "statistics are still empty. A value below 1 is a fraction of all steps (0.03 = the "
            "first 3%); transformers 5.x replaced warmup_ratio with this. A few percent of "
            "training, or 10-100 steps, is typical. The constant scheduler ignores it."
        ),
        range="a fraction in [0, 1), or a step count; 0.03-0.1 or 10-100 steps typical",
        default="0.03 (tuiwiz: 3% of steps); Hugging Face: 0 (no warmup)",
    ),
    Explanation(
        key="training.weight_decay",
        title="Weight decay",
        summary="Shrink weights toward zero each step (AdamW): mild regularization",
        body=(
            "Each optimizer step pulls the trainable weights slightly toward zero, separately "
            "from the gradient as in AdamW; transformers exempts biases and LayerNorm weights. "
            "With LoRA it acts only on the small adapter matrices and has a modest effect. Try "
            "0.01-0.1 if a small dataset overfits; fewer epochs usually help more."
        ),
        range="0.0 to 0.1",
        default="0.0 (tuiwiz and Hugging Face)",
    ),
    Explanation(
        key="training.optim",
        title="Optimizer",
        summary="Optimizer: adamw_torch(_fused), adamw_8bit, paged_adamw_8bit, adafactor, sgd, ...",
        body=(
            "Turns gradients into updates; its state costs memory per trainable parameter. "
            "adamw_torch keeps two 32-bit states (8 bytes/param) and adamw_torch_fused is the same "
            "math in faster fused GPU kernels; adamw_8bit (alias adamw_bnb_8bit, Dettmers et al. "
            "2021) stores them in 8 bits, about 2 bytes/param, with nearly the same results. The "
            "paged_adamw_8bit/32bit variants (from QLoRA) move optimizer state to CPU RAM during "
            "memory spikes instead of failing with out-of-memory. adafactor keeps only row and "
            "column statistics of the second moment, far less than AdamW, and sgd keeps no state "
            "by default but trains LLMs less well; with LoRA only the small adapters have state."
        ),
        range="adamw_torch | adamw_torch_fused | adamw_8bit | paged_adamw_8bit | "
        "paged_adamw_32bit | adafactor | sgd | ...",
        default="paged_adamw_8bit (tuiwiz); Hugging Face: adamw_torch_fused (torch >= 2.8), "
        "else adamw_torch",
    ),
    Explanation(
        key="training.bf16",
        title="bf16 mixed precision",
        summary="bfloat16 mixed precision: faster, less memory; needs an Ampere+ GPU (RTX 30xx+)",
        body=(
            "Runs most of the forward and backward pass in bfloat16, a 16-bit format with "
            "float32's range, so it rarely overflows and needs no loss scaling. It speeds up "
            "training and saves memory on hardware that supports it: NVIDIA Ampere or newer "
            "(RTX 30xx/40xx, A100, H100). Prefer it to fp16 whenever available; enable at most "
            "one of the two, matching bnb_4bit_compute_dtype. tuiwiz trains with TRL's SFTConfig, "
            "which turns bf16 on unless told otherwise: tuiwiz sets it false unless the preset "
            "sets it. Without a CUDA GPU, tuiwiz turns bf16, fp16 and tf32 off (with a notice)."
        ),
        range="true | false (not together with fp16)",
        default="false (tuiwiz forces false unless set, and on the CPU; TRL SFTConfig: true)",
    ),
    Explanation(
        key="training.fp16",
        title="fp16 mixed precision",
        summary="float16 mixed precision, for GPUs without bfloat16 (T4, V100); uses loss scaling",
        body=(
            "Runs most computation in float16, which speeds up training on GPUs without fast "
            "bfloat16, such as the T4 (e.g. free Colab) and V100. float16 has a small range, so "
            "the loss is multiplied by an automatically adjusted scale to keep gradients from "
            "underflowing; overflows show as skipped steps or a NaN loss. Use bf16 instead when "
            "the hardware supports it, and never enable both."
        ),
        range="true | false (not together with bf16)",
        default="false (Hugging Face)",
    ),
    Explanation(
        key="training.tf32",
        title="TF32 matmuls",
        summary="Allow TF32 matmuls on Ampere+ GPUs: much faster float32 math, tiny precision loss",
        body=(
            "TF32 is a mode of NVIDIA Ampere and newer GPUs that runs float32 matrix multiplies "
            "with float16's 10-bit mantissa but float32's range: much faster, with a negligible "
            "effect on training. It only affects math still done in float32, e.g. without "
            "bf16/fp16 or with a float32 compute dtype. Unset leaves PyTorch's setting alone; "
            "true raises an error on GPUs without TF32."
        ),
        range="true | false | unset",
        default="unset (Hugging Face: PyTorch's own setting is kept)",
    ),
    Explanation(
        key="training.max_grad_norm",
        title="Gradient clipping",
        summary="Clip the total gradient norm to this value to tame loss spikes (0 = off)",
        body=(
            "Before each update, if the combined norm of all gradients exceeds this value, they "
            "are scaled down to it, so one bad batch cannot throw training off. It costs almost "
            "nothing. 1.0 is the standard; the QLoRA code (Dettmers et al. 2023) used 0.3. "
            "Lower it if you see loss spikes; 0 disables clipping."
        ),
        range="0 (off), or 0.1 to 10; 0.3-1.0 typical",
        default="1.0 (Hugging Face)",
    ),
    Explanation(
        key="training.eval_strategy",
        title="Evaluation schedule",
        summary="When to compute validation loss: no, steps (every eval_steps) or epoch",
        body=(
            "How often the model is scored on the validation set. no never evaluates, steps "
            "evaluates every eval_steps optimizer steps, and epoch at the end of each epoch. "
            "Evaluation takes time in proportion to the validation set, but it is the reliable "
            "way to spot overfitting. Needs a validation set: when data.validation_split > 0 "
            "and this is unset, tuiwiz turns evaluation on itself (steps, every save_steps)."
        ),
        range="no | steps | epoch",
        default="steps when validation_split > 0, else no (tuiwiz); Hugging Face: no",
    ),
    Explanation(
        key="training.eval_steps",
        title="Evaluate every N steps",
        summary="Optimizer steps between evaluations when eval_strategy = steps",
        body=(
            "With eval_strategy = steps, the validation set is scored every this many optimizer "
            "updates; a value below 1 is a fraction of all steps (0.1 = every 10%). When tuiwiz "
            "turns evaluation on itself (validation_split > 0), unset means save_steps, so each "
            "checkpoint has a validation loss. Aim for 5-20 evaluations per run."
        ),
        range="a positive integer, or a fraction in (0, 1)",
        default="unset: save_steps when tuiwiz turns evaluation on (Hugging Face: logging_steps)",
    ),
    Explanation(
        key="training.save_strategy",
        title="Checkpoint schedule",
        summary="When to write checkpoints: steps (every save_steps), epoch, best, or no",
        body=(
            "Checkpoints let you resume an interrupted run and go back to an earlier model if "
            "later training overfits; with LoRA they are small, holding only the adapter and its "
            "optimizer state. steps saves every save_steps updates, epoch at the end of each "
            "epoch, best whenever the evaluation metric improves (needs evaluation), and no "
            "writes no checkpoints during training."
        ),
        range="no | steps | epoch | best",
        default="steps (Hugging Face)",
    ),
    Explanation(
        key="training.save_steps",
        title="Save every N steps",
        summary="Optimizer steps between checkpoints when save_strategy = steps",
        body=(
            "With save_strategy = steps, a checkpoint is written every this many optimizer "
            "updates; a value below 1 is a fraction of all steps. Frequent saves cost disk space "
            "and a little time; rare ones lose more work if the run dies. To keep the checkpoint "
            "with the best validation loss, evaluate on the same schedule."
        ),
        range="a positive integer, or a fraction in (0, 1)",
        default="100 (tuiwiz); Hugging Face: 500",
    ),
    Explanation(
        key="training.save_total_limit",
        title="Checkpoints to keep",
        summary="Keep the newest N complete checkpoints (plus the best one); unset = keep all",
        body=(
            "tuiwiz rotates checkpoints itself, once a new checkpoint is complete (it holds its "
            "COMPLETE marker), so a crash during a save never leaves resume without one: it "
            "keeps the newest N complete checkpoints and deletes older ones. With "
            "load_best_model_at_end it keeps the best checkpoint as well, as the Trainer's own "
            "rotation does. 2-3 is a sensible value."
        ),
        range="unset (no limit) or a positive integer; 2-3 typical",
        default="unset (Hugging Face: keep all)",
    ),
    Explanation(
        key="training.load_best_model_at_end",
        title="Load the best model at the end",
        summary="End with the checkpoint of the best validation metric, not the last step's",
        body=(
            "Tracks the evaluation metric (metric_for_best_model, by default eval_loss) and, "
            "when training ends, loads the checkpoint where it was best, so the final adapter "
            "is the best one seen rather than the last. It needs evaluation (validation_split "
            "> 0) on the same schedule as checkpoints (eval_steps = save_steps, as tuiwiz sets "
            "them by default), and keeps the best checkpoint through rotation."
        ),
        range="true | false",
        default="false (Hugging Face)",
    ),
    Explanation(
        key="training.metric_for_best_model",
        title="Metric for the best model",
        summary="Which evaluation metric picks the best checkpoint (default: eval_loss)",
        body=(
            "The metric load_best_model_at_end compares between checkpoints, by its name in the "
            "evaluation results, with or without the eval_ prefix: loss (the validation loss) "
            "unless you compute other metrics. Set greater_is_better to match it: lower is "
            "better for a loss, higher for an accuracy."
        ),
        range='a metric name, e.g. "eval_loss" or "loss"',
        default="unset (Hugging Face: loss when load_best_model_at_end is on)",
    ),
    Explanation(
        key="training.greater_is_better",
        title="Greater is better",
        summary="Whether a higher metric_for_best_model is better (false for losses)",
        body=(
            "Tells load_best_model_at_end which way metric_for_best_model improves. Unset, it "
            "is true unless the metric's name ends in loss, which suits the validation loss. "
            "Set it only for a metric of your own where the name does not tell."
        ),
        range="true | false | unset",
        default="unset (Hugging Face: false for a metric ending in loss, else true)",
    ),
    Explanation(
        key="training.lr_scheduler_kwargs",
        title="Scheduler options",
        summary="Extra options for the LR schedule, e.g. {num_cycles = 2} or {min_lr_rate = 0.1}",
        body=(
            "A table of arguments passed to the chosen lr_scheduler_type: num_cycles for "
            "cosine_with_restarts, min_lr_rate or min_lr for cosine_with_min_lr (the rate the "
            "learning rate decays to instead of 0), power and lr_end for polynomial, "
            "num_decay_steps for warmup_stable_decay. An option the schedule does not take "
            "makes the run fail when it starts."
        ),
        range="a table of the schedule's own options",
        default="unset (Hugging Face: none)",
    ),
    Explanation(
        key="training.speed",
        title="Speed",
        summary="default, or fast: the fastest options known to train the same model here",
        body=(
            "A shortcut. fast turns on what the preset leaves unset: padding-free batches "
            "(padding_free) everywhere; Liger kernels (use_liger_kernel) on a CUDA GPU with "
            "liger-kernel installed (pip install 'tuiwiz[fast]'); flash_attention_2 instead of "
            "sdpa on a CUDA GPU with flash-attn installed. None of them drops, reorders or cuts "
            "examples: the loss is the same up to rounding. What fast leaves off on a machine, "
            "and why, is in the log and the estimate's notes; a run records what it resolved to "
            "in its preset.toml. default leaves every option as the preset sets it."
        ),
        range="default | fast",
        default="default (tuiwiz's own key, not a TrainingArguments field)",
    ),
    Explanation(
        key="training.padding_free",
        title="Padding-free batches",
        summary="Join a batch's examples in one row instead of padding them: no compute on padding",
        body=(
            "Without it each example of a batch is padded to the longest one and the padding is "
            "computed like real tokens: with mostly short examples and a few long ones, that can "
            "be half the work. Padding-free batches (TRL) join the examples end to end; position "
            "ids restart at each one and attention stays within it, so the loss is the one padded "
            "batches give (tuiwiz's tests check it to 1e-4). Fastest with flash_attention_2; with "
            "sdpa, transformers builds a block mask over the row, which grows with the square of "
            "the batch's tokens. Packing is padding-free already."
        ),
        range="true | false",
        default="false (TRL SFTConfig); speed = fast turns it on",
    ),
    Explanation(
        key="training.use_liger_kernel",
        title="Liger kernels",
        summary="Liger's Triton kernels for norms, SwiGLU and RoPE: faster, less memory (CUDA)",
        body=(
            "Replaces the model's RMSNorm, SwiGLU MLP and rotary embedding code with Liger "
            "Kernel's fused Triton kernels, which move less data and keep fewer activations for "
            "backward, with the same results up to rounding. It needs a CUDA GPU and the "
            "liger-kernel package (pip install 'tuiwiz[fast]'): a preset that asks for it "
            "elsewhere is refused before the run starts. Liger's fused cross-entropy stays off: "
            "TRL computes the loss with its own fused, chunked LM head, and only one of the two "
            "may patch the model. Llama, Mistral, Qwen, Gemma and Phi are among the families "
            "Liger supports."
        ),
        range="true | false",
        default="false (Hugging Face); speed = fast turns it on where it works",
    ),
    Explanation(
        key="training.train_sampling_strategy",
        title="Batch sampling",
        summary="random, or group_by_length: batches of similar lengths, so less padding",
        body=(
            "random draws each batch's examples at random. group_by_length (transformers' "
            "LengthGroupedSampler) puts examples of similar lengths together, so padded batches "
            "waste little: faster when lengths vary a lot. The order is then less random, "
            "batches of long examples alternate with short ones and the loss curve gets jumpier, "
            "so results can differ a little; speed = fast leaves it alone for that reason. It "
            "saves nothing with padding-free batches or packing, which have no padding. "
            "sequential keeps the dataset's order; batch_rebalance is for several GPUs."
        ),
        range="random | sequential | group_by_length | batch_rebalance",
        default="random (Hugging Face)",
    ),
    Explanation(
        key="training.activation_offloading",
        title="Activation offloading",
        summary="Keep the activations saved for backward in CPU RAM: much less GPU memory, slower",
        body=(
            "Moves the tensors each layer saves for the backward pass to pinned CPU RAM during "
            "the forward pass and brings them back just before backward needs them (TRL's "
            "activation offloading; the copies overlap compute on a second CUDA stream). With "
            "gradient checkpointing that is each layer's input, at long context the largest "
            "term of all (Llama-3.1-8B at 32k tokens: 16 GiB). What is learned does not change; "
            "steps slow down by the copies compute cannot hide, and the machine needs that much "
            "free RAM. CUDA GPUs only: refused elsewhere before the run starts."
        ),
        range="true | false",
        default="false (TRL SFTConfig)",
    ),
    Explanation(
        key="training.torch_compile",
        title="Compile the model",
        summary="Compile the model with torch.compile: faster steps after a slow first one",
        body=(
            "Compiles the model's forward and backward into fused kernels with torch.compile. "
            "Steps can be noticeably faster on recent NVIDIA GPUs, but the first steps are slow "
            "while it compiles (minutes for a large model), a change of sequence length can "
            "recompile, and 4-bit layers and some models are not supported everywhere. Try it "
            "for long runs once everything else works."
        ),
        range="true | false",
        default="false (Hugging Face)",
    ),
    Explanation(
        key="training.logging_steps",
        title="Log every N steps",
        summary="Optimizer steps between log lines (loss, learning rate, gradient norm)",
        body=(
            "How often training loss, learning rate and gradient norm are recorded, shown and "
            "sent to report_to. The transformers default of 500 is far too sparse for short "
            "fine-tunes: a 300-step run would log no loss at all. 1-10 gives a detailed loss "
            "curve at negligible cost; a value below 1 is a fraction of all steps."
        ),
        range="1 to 100, or a fraction in (0, 1)",
        default="10 (tuiwiz and TRL SFTConfig); Hugging Face: 500",
    ),
    Explanation(
        key="training.seed",
        title="Random seed",
        summary="Seed for adapter init, shuffling and dropout: same seed, repeatable run",
        body=(
            "Fixes the random choices of training: LoRA weight initialization, data shuffling and "
            "dropout. With the same seed, data and settings a run repeats closely on the same "
            "hardware, though GPU kernels are not always bit-exact. Try a couple of seeds before "
            "trusting a small difference between two runs."
        ),
        range="any integer",
        default="42 (tuiwiz and Hugging Face)",
    ),
    Explanation(
        key="training.report_to",
        title="Report to",
        summary="Where to send metrics: none, tensorboard, wandb, mlflow, trackio, ... or all",
        body=(
            "Sends logged metrics to experiment-tracking tools, to compare runs in charts. none "
            "sends nothing; tensorboard writes event files locally; wandb, mlflow, trackio, "
            "comet_ml and others need their package installed and often an account; all uses "
            'every installed integration. A list such as ["tensorboard", "wandb"] uses several.'
        ),
        range="none | all | tensorboard | wandb | mlflow | trackio | comet_ml | ... (or a list)",
        default="none (transformers 5.x; 4.x used every installed integration)",
    ),
    Explanation(
        key="training.dataloader_num_workers",
        title="Data loader workers",
        summary="Background processes preparing batches (0 = in the main process)",
        body=(
            "With 0, batches are prepared in the training process between steps. Text is usually "
            "tokenized up front, so preparing a batch is cheap and 0 is fine; 2-4 workers help "
            "if the GPU waits for data. Each worker is a separate process that costs memory and "
            "start-up time."
        ),
        range="0 to the number of CPU cores; 0-4 typical",
        default="0 (Hugging Face)",
    ),
    Explanation(
        key="training.neftune_noise_alpha",
        title="NEFTune noise",
        summary="Add noise to embeddings while training (NEFTune); often helps chat tuning, try 5",
        body=(
            "NEFTune (Jain et al. 2023) adds uniform random noise to the input embeddings during "
            "training only, scaled by alpha / sqrt(sequence length x hidden size). The paper "
            "reports large gains in conversational quality: LLaMA-2-7B tuned on Alpaca went from "
            "29.8% to 64.7% on AlpacaEval, with little change on knowledge benchmarks. It is a "
            "regularizer, most useful for instruction tuning on small datasets. Typical values "
            "are 5, 10 or 15."
        ),
        range="unset (off) or 5 to 15",
        default="unset (Hugging Face: off)",
    ),
    # --- launch ----------------------------------------------------------------------------------
    Explanation(
        key="launch.nproc_per_node",
        title="Processes per machine",
        summary='Training processes on this machine, one per GPU; "auto" = every visible GPU',
        body=(
            "How many copies of the training process run on each machine, each on its own GPU. "
            "With more than one, tuiwiz starts them through torchrun and they train together: "
            "each process takes its own share of every batch, so the effective batch is "
            "per_device_train_batch_size x gradient_accumulation_steps x number of processes. "
            '"auto" uses every GPU that CUDA_VISIBLE_DEVICES leaves visible (1 without a GPU). '
            "It cannot exceed the visible GPUs; on a CPU-only machine several processes share "
            "the CPU (useful for testing, not for speed)."
        ),
        range='"auto" or 1 to the number of visible GPUs',
        default="1 (one process, no torchrun)",
    ),
    Explanation(
        key="launch.nnodes",
        title="Machines",
        summary="How many machines train together (each runs nproc_per_node processes)",
        body=(
            "The number of machines (nodes) in the run. With more than one, start `tuiwiz run` "
            "on node 0 first: it prints the command that starts each other node. Every node "
            "needs the same preset, model and data at the same paths, and the run directory "
            "should be on a filesystem all nodes share (resume needs it). On a Slurm cluster, "
            "`tuiwiz launch-script RUN --slurm` writes a batch script instead."
        ),
        range="1 or more",
        default="1",
    ),
    Explanation(
        key="launch.node_rank",
        title="This machine's number",
        summary="Which machine this is, 0 to nnodes - 1; node 0 writes the run's files",
        body=(
            "Numbers the machines of a multi-machine run. Node 0 hosts the rendezvous, and its "
            "first process writes the events, status, checkpoints and adapter; the other nodes "
            "only write their own logs (train-rankN.log). Leave it at 0 in the preset and set it "
            "per machine with --set launch.node_rank=N, as the command printed by node 0 does."
        ),
        range="0 to nnodes - 1",
        default="0",
    ),
    Explanation(
        key="launch.master_addr",
        title="Node 0's address",
        summary="Address of node 0 that the other machines connect to (multi-machine runs)",
        body=(
            "The host name or IP address of node 0, as the other machines reach it; they meet "
            "there to start training together. It matters only when nnodes > 1: a single "
            "machine picks a free local port by itself. 127.0.0.1 works only when every node "
            "runs on the same machine."
        ),
        range="a host name or IP address reachable from every node",
        default="127.0.0.1",
    ),
    Explanation(
        key="launch.master_port",
        title="Node 0's port",
        summary="TCP port on node 0 for the rendezvous of a multi-machine run",
        body=(
            "The port node 0 listens on while the machines of a multi-machine run find each "
            "other. Pick a free port that the firewall between the nodes lets through. Used "
            "only when nnodes > 1."
        ),
        range="1 to 65535 (a free port, usually above 1024)",
        default="29500 (torchrun's default)",
    ),
    Explanation(
        key="launch.strategy",
        title="Multi-GPU strategy",
        summary="ddp (a full copy of the model per GPU) or fsdp (the model sharded across GPUs)",
        body=(
            "How several processes share the work. ddp (DistributedDataParallel) keeps a whole "
            "copy of the 4-bit model on every GPU and averages the adapters' gradients: the "
            "simplest and fastest when the model fits one GPU. fsdp (Fully Sharded Data "
            "Parallel) splits the model's weights, gradients and optimizer state across the "
            "GPUs, so a model too large for one GPU can still train (FSDP-QLoRA: the 4-bit "
            "weights are stored in the compute dtype so they can be sharded). fsdp needs NVIDIA "
            "GPUs and at least two processes."
        ),
        range="ddp | fsdp",
        default="ddp",
    ),
)

EXPLANATIONS: dict[str, Explanation] = {e.key: e for e in _ENTRIES}

# Other names of a key, explained once under the key they stand for: transformers 5.x renamed
# gradient_checkpointing, and a preset may use either name.
ALIASES: dict[str, str] = {
    "training.activation_checkpointing": "training.gradient_checkpointing",
}


@dataclass(frozen=True)
class SectionNote:
    """What a whole section is, beyond its keys: `tuiwiz explain training`."""

    section: str
    title: str
    body: str


SECTION_NOTES: dict[str, SectionNote] = {
    "training": SectionNote(
        section="training",
        title="Training settings ([training])",
        body=(
            "[training] takes any field of transformers.TrainingArguments, checked by name "
            "(with a did-you-mean for typos) on top of tuiwiz's defaults. tuiwiz trains with "
            "TRL's SFTConfig and sets some of its options itself, so a preset cannot: "
            "output_dir (the run directory: `tuiwiz run --output-dir DIR`), max_length (use "
            "[data] max_seq_length), packing (use [data] packing), "
            "include_num_input_tokens_seen (tokens/s and tokens seen come from it), "
            "disable_tqdm (progress goes to the run directory), save_only_model (checkpoints "
            "keep the optimizer state for an exact resume), dataset_num_proc (tuiwiz "
            "tokenizes the data itself: [data] num_proc) and dataset_kwargs (TRL skips its own "
            "pass over data tuiwiz already tokenized and truncated, except with packing). "
            "resume_from_checkpoint (use `tuiwiz resume RUN`) and "
            "hub_token (set HF_TOKEN) are refused too. SFTConfig's own fields, such as "
            "dataset_text_field or completion_only_loss, are not accepted: [data] covers what "
            "they do; padding_free and activation_offloading, the speed and memory options tuiwiz "
            "explains and estimates, are the exceptions. speed is tuiwiz's own shortcut for the "
            "fastest of them. tuiwiz also decides bf16, eval_strategy, eval_steps, "
            "save_total_limit and the checkpointing kwargs where a preset leaves them unset: "
            "see each key."
        ),
    ),
}


def section_note(name: str) -> SectionNote | None:
    """The note of a section ("training", "[training]"), or None."""
    return SECTION_NOTES.get(_normalize(name).strip("[]"))


SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(k.split(".", 1)[0] for k in EXPLANATIONS))

# bare key -> every full key with that name ("r" -> ["lora.r"])
_BARE: dict[str, list[str]] = {}
for _full in EXPLANATIONS:
    _BARE.setdefault(_full.split(".", 1)[1], []).append(_full)
del _full


class UnknownKeyError(KeyError):
    """A KeyError whose message prints as plain text (KeyError would show it quoted)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _normalize(key: str) -> str:
    return key.strip().lower().replace("-", "_")


def _suggestions(norm: str) -> list[str]:
    """Full keys close to `norm`, which may be a full key, a bare key, or a wrong section.key."""
    import difflib  # imported when needed: keeps `import tuiwiz.explain` fast

    found: list[str] = []
    for match in difflib.get_close_matches(norm, list(EXPLANATIONS), n=3, cutoff=0.6):
        found.append(match)
    bare = norm.rsplit(".", 1)[-1]
    for match in difflib.get_close_matches(bare, list(_BARE), n=3, cutoff=0.6):
        found.extend(_BARE[match])
    return list(dict.fromkeys(found))[:3]


def explain(key: str) -> Explanation:
    """The explanation of `key`: "section.key", or a bare key such as "learning_rate" or "r".

    Case and dashes are forgiven ("Learning-Rate"). Raises KeyError naming close matches when the
    key is unknown, or listing the candidates when a bare key is ambiguous.
    """
    if not isinstance(key, str):
        raise TypeError(f"explain() takes a key string, got {type(key).__name__}")
    norm = _normalize(key)
    norm = ALIASES.get(norm) or ALIASES.get(f"training.{norm}") or norm
    if norm in EXPLANATIONS:
        return EXPLANATIONS[norm]
    if "." not in norm and norm in _BARE:
        candidates = _BARE[norm]
        if len(candidates) == 1:
            return EXPLANATIONS[candidates[0]]
        raise UnknownKeyError(f"{key!r} is ambiguous: use one of {', '.join(candidates)}")
    hints = _suggestions(norm)
    message = f"no explanation for {key!r}"
    if hints:
        message += f"; did you mean {' or '.join(hints)}?"
    else:
        message += f"; keys are section.key with sections {', '.join(SECTIONS)}"
    raise UnknownKeyError(message)


def keys_for(section: str) -> list[str]:
    """The full keys of one section ("lora" -> ["lora.r", ...]), in display order.

    Raises KeyError, with a suggestion, for an unknown section.
    """
    norm = _normalize(section)
    keys = [k for k in EXPLANATIONS if k.split(".", 1)[0] == norm]
    if not keys:
        import difflib

        close = difflib.get_close_matches(norm, SECTIONS, n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else f"sections: {', '.join(SECTIONS)}"
        raise UnknownKeyError(f"no section {section!r}; {hint}")
    return keys
