"""The ratio sweep (python -m launch.sweep --config configs/sweep/ratio.py): one run per eta, trained and evaluated.

Embedded default: a tiny sweep on CPU, built from nothing but this repository:
- agent data: the data pipeline's offline default (oracle-teacher DB and OS trajectories; the household source is
  left out here to keep the sweep short);
- held-in eval items: DB / OS tasks the pipeline derives with other seeds than the training data; their oracle
  trajectories are the trainer's held-out eval set (eval_loss: agent loss on unseen tasks);
- general data and general eval: word games made by data_pipeline.word_games, with a held-out set;
- tokenizer: a 512-piece byte-level BPE trained on both pools (the `tiny` preset's vocabulary).
A tiny model's agent and word-game scores stay near zero in 50 steps, so at this scale the losses carry the
signal (the sweep takes ~20 minutes on 2 busy cores). Paper scale: train.config = configs/train/llama2_7b.py,
the published AgentInstruct + ShareGPT data, eval.general enabled with the benchmark files, and mode "tpu".
"""
from ml_collections import ConfigDict


def get_config():
    c = ConfigDict()
    c.title = "AgentTuning ratio sweep (tiny model, CPU)"
    c.etas = (0.0, 0.1, 0.2, 0.5, 1.0)
    c.mode = "local"  # "local": train + evaluate here, one eta after another; "tpu": write launch.tpu jobs
    c.out_dir = "runs/sweep_ratio"
    c.run_dir_template = "{out_dir}/{tag}/run"  # gs://... for mode "tpu"
    c.python = ""  # interpreter for the stages ("" = the one running the sweep)

    # Data steps, run once each before the runs (placeholders: {python}, {out_dir}, {data_dir}).
    pipeline = "{python} -m data_pipeline.run --config configs/pipeline/offline_small.py --config.progress=False"
    c.data = ConfigDict(dict(out_dir="{out_dir}/data", steps=[
        pipeline + " --config.out_dir={data_dir}/agent --config.sources.household.enabled=False",
        pipeline + " --config.out_dir={data_dir}/heldin --config.sources.household.enabled=False"
                   " --config.sources.db_annotated.enabled=False --config.sources.os_annotated.enabled=False"
                   " --config.sources.db_derived.seed=1001 --config.sources.db_derived.n_tables=2"
                   " --config.sources.os_derived.seed=1001 --config.sources.os_derived.n=8",
        "{python} -m data_pipeline.word_games --data_dir {data_dir} --agent_dir {data_dir}/agent/export/agentinstruct"
        " --tasks {data_dir}/heldin/tasks.jsonl --eval_items_per_env 4",
    ]))

    # The run's config file = train.config + train.settings (any field type: the trainer's list fields cannot be
    # set on a command line) + overrides (--config.key=value strings); eta goes to train.eta_key.
    c.train = ConfigDict(dict(
        enabled=True, module="agentlm.train", config="configs/train/tiny_cpu.py", eta_key="data.mixture.eta",
        settings=ConfigDict({"data": {"source": "mixture", "mixture": {
            "agent_paths": ["{data_dir}/agent/export/agentinstruct"], "general_paths": ["{data_dir}/general"],
            "tokenizer": "{data_dir}/tokenizer/tokenizer.json", "cache_dir": "{out_dir}/tfds_cache"},
            "eval_paths": ["{data_dir}/heldin/export/agentinstruct"]}}),
        overrides=["--config.data.seq_len=1024", "--config.data.global_batch_size=4",
                   "--config.train.steps=50", "--config.optimizer.warmup_steps=5", "--config.checkpoint.every=50",
                   "--config.log.every=5", "--config.log.eval_every=0", "--config.log.progress=False",
                   "--config.log.tensorboard=False"]))

    c.eval = ConfigDict()
    c.eval.agent = ConfigDict(dict(
        enabled=True, module="agentlm.eval.agent", config="configs/eval/agent.py",
        overrides=["--config.tasks=db,os", "--config.tokenizer={data_dir}/tokenizer/tokenizer.json",
                   "--config.db.data_file={data_dir}/eval_items/db.jsonl",
                   "--config.os.data_file={data_dir}/eval_items/os.jsonl",
                   "--config.workers=2", "--config.max_tokens=48"]))
    # Paper-scale general benchmarks (need the benchmark files; see configs/eval/general.py).
    c.eval.general = ConfigDict(dict(
        enabled=False, module="agentlm.eval.general", config="configs/eval/general.py",
        overrides=["--config.data_root=data/general_eval", "--config.benchmarks=mmlu,gsm8k"]))
    # The tiny world's general eval: exact match on held-out word games (agentlm.eval.word_games).
    c.eval.builtin_general = ConfigDict(dict(
        enabled=True, items_file="{data_dir}/general_eval.jsonl", tokenizer="{data_dir}/tokenizer/tokenizer.json",
        max_new_tokens=24))

    c.tpu = ConfigDict(dict(tpu="", zone="", type="", num_slices=1, extra_args=[]))
    return c
