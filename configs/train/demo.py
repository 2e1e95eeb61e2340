"""The main job on the embedded default (`make demo`): the whole AgentTuning loop at toy scale on a CPU.

`make demo` first builds everything this config reads, from nothing but the repository:
  data/generated/demo/agent/export/agentinstruct/  oracle-teacher DB / OS / household trajectories
                                                    (python -m data_pipeline.run --config configs/pipeline/offline_small.py)
  data/generated/demo/general/train.jsonl           general conversations (word games), the 1 - eta pool
                                                    (python -m data_pipeline.word_games)
  data/generated/demo/tokenizer/tokenizer.json      a 512-piece byte-level BPE trained on both pools
then trains the `tiny` Llama on the eta = 0.2 mixture, printing the falling loss and where the checkpoint went.
The eval loss comes from a second pipeline run with other seeds (tasks never trained on).
"""
from agentlm.train.config import default_config

DATA = "data/generated/demo"


def get_config():
    c = default_config()
    c.run_dir = "runs/demo"
    c.model.preset = "tiny"
    c.data.source = "mixture"
    c.data.mixture.eta = 0.2
    c.data.mixture.agent_paths = (f"{DATA}/agent/export/agentinstruct",)
    c.data.mixture.general_paths = (f"{DATA}/general",)
    c.data.mixture.tokenizer = f"{DATA}/tokenizer/tokenizer.json"
    c.data.mixture.cache_dir = f"{DATA}/tfds_cache"
    c.data.eval_paths = [f"{DATA}/heldout/export/agentinstruct"]
    c.data.global_batch_size = 4
    c.data.seq_len = 1024  # DB trajectories are ~600-1000 tokens under the 512-piece demo tokenizer
    # Block-causal attention skips the key blocks after each query block (exact for packed rows; ~2x on CPU).
    c.model.attention_impl = "causal_blocks"
    c.model.attention_chunk = 128
    c.train.steps = 150
    c.optimizer.lr = 3e-3
    c.optimizer.warmup_steps = 20
    c.checkpoint.every = 50
    c.log.every = 10
    c.log.eval_every = 50
    c.log.eval_batches = 2
    return c
