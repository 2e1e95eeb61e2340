"""The ratio sweep in miniature (python -m launch.sweep --config configs/sweep/ratio.py): the paper's eta study on
the toy world, eta in {0, 0.1, 0.2, 0.5, 1.0} x 3 seeds, each run trained, served and evaluated.

Built from nothing but this repository (data steps below, run once):
- agent data: oracle-teacher trajectories of the held-in toy task families (configs/pipeline/toy_agent.py:
  db_count, db_first, os_count, os_read; data_pipeline.sources.toy_tasks), with short instruction prompts;
- evaluation items: new instances (another seed) of the held-in families and of the held-out families db_tally
  and os_tally (a held-in skill under a template never trained on);
- general data and general eval: word games (data_pipeline.word_games) and their held-out set;
- tokenizer: a 1,024-piece byte-level BPE trained on both pools inside the chat template (toy_1m's vocabulary).
Each run: configs/train/demo.py at the run's eta and seed; then `agentlm.infer.serve` on the checkpoint and
`agentlm.eval.agent` against it (greedy, one invocation per family, the environments' own metrics, the training
prompts via prompt_file), and the word-game exact match (agentlm.eval.word_games).
Paper scale: train.config = configs/train/llama2_7b.py, the published AgentInstruct + ShareGPT data, the paper's
agent tasks (no suites), eval.general enabled with the benchmark files, and mode "tpu".
"""
from ml_collections import ConfigDict

DB_PROMPT = "configs/envs/toy_db_scaffold.json"
OS_PROMPT = "configs/envs/toy_os_scaffold.json"
FAMILIES = {"db_count": ("db", "held_in"), "db_first": ("db", "held_in"), "os_count": ("os", "held_in"),
            "os_read": ("os", "held_in"), "db_tally": ("db", "held_out"), "os_tally": ("os", "held_out")}


def get_config():
    c = ConfigDict()
    c.title = "AgentTuning ratio sweep (toy world, 1.05M-parameter model, CPU)"
    c.etas = (0.0, 0.1, 0.2, 0.5, 1.0)
    c.seeds = (0, 1, 2)
    c.before_after = ()  # (untuned eta, tuned eta): also write before_after.md
    c.mode = "local"  # "local": train + evaluate here, one run after another; "tpu": write launch.tpu jobs
    c.out_dir = "runs/sweep_ratio"
    c.run_dir_template = "{out_dir}/{tag}/run"  # gs://... for mode "tpu"
    c.python = ""  # interpreter for the stages ("" = the one running the sweep)

    # Data steps, run once each before the runs (placeholders: {python}, {out_dir}, {data_dir}).
    c.data = ConfigDict(dict(out_dir="{out_dir}/data", steps=[
        "{python} -m data_pipeline.run --config configs/pipeline/toy_agent.py --config.progress=False"
        " --config.out_dir={data_dir}/agent",
        "{python} -m data_pipeline.sources.toy_tasks --out {data_dir}/eval_items --seed 1001 --n 20",
        "{python} -m data_pipeline.word_games --data_dir {data_dir} --agent_dir {data_dir}/agent/export/agentinstruct"
        " --vocab_size 1024 --n_general 4000 --n_general_eval 80",
    ]))

    # The run's config file = train.config + train.settings (any field type: the trainer's list fields cannot be
    # set on a command line) + overrides (--config.key=value strings); eta goes to train.eta_key.
    c.train = ConfigDict(dict(
        enabled=True, module="agentlm.train", config="configs/train/demo.py", eta_key="data.mixture.eta",
        settings=ConfigDict({"data": {"mixture": {
            "agent_paths": ["{data_dir}/agent/export/agentinstruct"], "general_paths": ["{data_dir}/general"],
            "tokenizer": "{data_dir}/tokenizer/tokenizer.json", "cache_dir": "{out_dir}/tfds_cache"}}}),
        overrides=[],
        # AgentTuning fine-tunes Llama-2-chat, a model that already has general ability. The toy stand-in: the
        # eta = 0 run (general data only, from scratch) is the untuned chat model, and every other eta fine-tunes
        # it (--config.init_from=<its run>) on its mixture. None: every run starts from random weights.
        init_from_eta=0.0))

    c.eval = ConfigDict()
    # Held-in and held-out agent scores: one eval.agent run per task family against the served model. The toy
    # tasks take 2 rounds; max_rounds=5 only bounds the time a looping model can spend.
    c.eval.agent = ConfigDict(dict(
        enabled=True, module="agentlm.eval.agent", config="configs/eval/agent.py",
        overrides=["--config.workers=4", "--config.max_tokens=96", f"--config.db.prompt_file={DB_PROMPT}",
                   f"--config.os.prompt_file={OS_PROMPT}", "--config.db.max_rounds=5", "--config.os.max_rounds=5"],
        suites=ConfigDict({name: dict(task=task, group=group, items=f"{{data_dir}}/eval_items/{name}.jsonl")
                           for name, (task, group) in FAMILIES.items()}),
        serve=ConfigDict(dict(enabled=True, module="agentlm.infer.serve", startup_timeout_s=600.0,
                              args=["--tokenizer", "{data_dir}/tokenizer/tokenizer.json", "--max-batch-rows", "8",
                                    "--min-batch-rows", "4"]))))
    # Paper-scale general benchmarks (need the benchmark files; see configs/eval/general.py).
    c.eval.general = ConfigDict(dict(
        enabled=False, module="agentlm.eval.general", config="configs/eval/general.py",
        overrides=["--config.data_root=data/general_eval", "--config.benchmarks=mmlu,gsm8k"]))
    # The toy world's general eval: exact match on held-out word games (agentlm.eval.word_games).
    c.eval.builtin_general = ConfigDict(dict(
        enabled=True, items_file="{data_dir}/general_eval.jsonl", tokenizer="{data_dir}/tokenizer/tokenizer.json",
        max_new_tokens=24))

    c.tpu = ConfigDict(dict(tpu="", zone="", type="", num_slices=1, extra_args=[]))
    return c
