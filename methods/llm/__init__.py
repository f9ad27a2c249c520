"""The LLM layer: backbones (the embedded SmolLM2 GGUF or any Hugging Face model), LoRA, chat templates,
batched generation (HF / vLLM), the paper's prompting baselines, answer parsing, Label SFT, LLM evaluation."""
