//! ByteCraft: byte alphabet, tokenizer, Qwen2 model, sampler, prompts.
