"""The toy AgentTuning run (`make demo`, configs/sweep/demo.py and configs/sweep/ratio.py train with this file).

The toy world (all made by the repository, see configs/sweep/ratio.py for the commands):
  data/generated/demo/agent/export/agentinstruct/  oracle-teacher trajectories of the held-in toy task families
                                                    (configs/pipeline/toy_agent.py: DB and OS, short prompts)
  data/generated/demo/general/train.jsonl           general conversations (word games), the 1 - eta pool
  data/generated/demo/tokenizer/tokenizer.json      a 1024-piece byte-level BPE trained on both pools, inside
                                                    the chat template (so the system block has its own pieces)
The model is the 1.05M-parameter `toy_1m` Llama: from random initialisation at eta = 0, fine-tuned from that run at
other etas (configs/sweep/ratio.py, train.init_from_eta); the sweep sets eta, the seed and the run directory
per run. Rows are 192 tokens: a toy agent conversation is 174-189
tokens under the demo tokenizer (rows shorter than a conversation would cut its answer turn: the mixture
truncates whole turns), a word game ~40, and packing fills the rest of a row.
"""
from agentlm.train.config import default_config

DATA = "data/generated/demo"


def get_config():
    c = default_config()
    c.run_dir = "runs/demo/eta_0.2/run"
    c.model.preset = "toy_1m"
    c.data.source = "mixture"
    c.data.mixture.eta = 0.2
    c.data.mixture.agent_paths = (f"{DATA}/agent/export/agentinstruct",)
    c.data.mixture.general_paths = (f"{DATA}/general",)
    c.data.mixture.tokenizer = f"{DATA}/tokenizer/tokenizer.json"
    c.data.mixture.cache_dir = f"{DATA}/tfds_cache"
    # The CPU training settings of benchmarks/RESULTS.md (same numbers, faster step).
    c.model.attention_impl = "causal_blocks"
    c.model.attention_chunk = 64
    c.model.loss_chunk = 64
    c.model.scan_unroll = 4
    c.data.global_batch_size = 16
    c.data.seq_len = 192
    c.train.steps = 300
    c.optimizer.lr = 5e-3
    c.optimizer.warmup_steps = 20
    c.checkpoint.every = 100
    c.checkpoint.keep = 1
    c.log.every = 20
    c.log.eval_every = 0
    c.log.eval_at_start = False
    c.log.tensorboard = False
    c.log.progress = False
    return c
