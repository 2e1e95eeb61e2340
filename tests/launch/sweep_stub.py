"""Stand-ins for the trainer and the two evaluation CLIs, for the fast sweep test: they take the same arguments,
write the same files (metrics.jsonl, agent/summary.json, general/summary.json) and log every call to
$SWEEP_STUB_LOG, so the sweep's orchestration (commands, done markers, skipping, table, plot) is tested in
seconds. The end-to-end test with the real trainer and evaluation is tests/launch/test_sweep.py::test_real_*."""
import json
import os
import pathlib
import sys


def main(argv):
    args = dict(a[len("--config."):].split("=", 1) for a in argv if a.startswith("--config.") and "=" in a)
    with open(os.environ["SWEEP_STUB_LOG"], "a") as f:
        f.write(json.dumps(argv) + "\n")
    if os.environ.get("SWEEP_STUB_FAIL") and os.environ["SWEEP_STUB_FAIL"] in " ".join(argv):
        print("stub: failing on purpose", file=sys.stderr)
        return 3
    if "run_dir" in args:  # trainer
        eta = float(next(v for k, v in args.items() if k.endswith("eta")))
        config_file = argv[argv.index("--config") + 1]
        assert config_file.endswith("train_config.py"), config_file  # the sweep's generated run config
        run = pathlib.Path(args["run_dir"])
        run.mkdir(parents=True, exist_ok=True)
        with open(run / "metrics.jsonl", "w") as f:
            f.write(json.dumps({"step": 10, "loss": 2.0 - eta}) + "\n")
            f.write(json.dumps({"step": 10, "eval_loss": 2.5 - eta}) + "\n")
        return 0
    tag = pathlib.Path(args["model"]).parent.name.split("_")  # eta_<eta> or eta_<eta>_seed_<seed>
    eta, seed = float(tag[1]), int(tag[3]) if len(tag) > 3 else 0
    out = pathlib.Path(args["out"])
    if "label" in args and "tasks" in args:  # one suite (task family): its score grows with eta, plus the seed
        task = args["tasks"]
        summary = {"tasks": {task: {"score": 20 + 60 * eta + seed, "errors": {"invalid_action": 1 - eta}}}}
        (out / "agent").mkdir(parents=True, exist_ok=True)
        (out / "agent" / "summary.json").write_text(json.dumps(summary))
    elif "label" in args:  # agent evaluation: held-in grows with eta, held-out peaks at 0.2
        held_in, held_out = 10 + 20 * eta, 10 - 20 * abs(eta - 0.2)
        summary = {"tasks": {"db": {"score": held_in, "errors": {"invalid_action": 0.5}},
                             "sciworld": {"score": held_out, "errors": {"invalid_action": 0.0}}},
                   "overall": {"held_in": {"overall": held_in / 12.5}, "held_out": {"overall": held_out / 14.9}}}
        (out / "agent").mkdir(parents=True, exist_ok=True)
        (out / "agent" / "summary.json").write_text(json.dumps(summary))
    else:  # general evaluation: falls with eta
        (out / "general").mkdir(parents=True, exist_ok=True)
        (out / "general" / "summary.json").write_text(json.dumps({"benchmarks": {"mmlu": {"score": 50 - 10 * eta}}}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
