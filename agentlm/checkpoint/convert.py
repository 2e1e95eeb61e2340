"""Command line: convert Hugging Face Llama directories to orbax model directories and back.

    python -m agentlm.checkpoint.convert hf-to-orbax --hf_dir meta-llama/Llama-2-7b-hf --out ckpt/llama2_7b
    python -m agentlm.checkpoint.convert orbax-to-hf --ckpt runs/agentlm_7b --out export/agentlm_7b

hf-to-orbax reads the safetensors tensor by tensor straight into the sharding of `--mesh` (default: every
device on fsdp), so the host never holds more than the sharded model plus one tensor. orbax-to-hf accepts a
model directory or a training-run directory (latest step unless --step) and writes config.json plus
safetensors (sharded with an index above --max_shard_size) that transformers/vLLM load unchanged.
Tokenizer files found next to the input are copied to the output.
"""
from __future__ import annotations

import argparse
import re
import sys
import time

import jax

from agentlm import distributed, sharding, storage
from agentlm.checkpoint.convert_hf import load_hf, save_hf
from agentlm.checkpoint.hf_io import CheckpointError, copy_tokenizer_files
from agentlm.checkpoint.store import load, save

_SIZE_UNITS = {"": 1, "B": 1, "KB": 10 ** 3, "MB": 10 ** 6, "GB": 10 ** 9, "KIB": 2 ** 10, "MIB": 2 ** 20,
               "GIB": 2 ** 30}


def parse_mesh(text: str) -> dict[str, int]:
    """'data=2,fsdp=-1' -> {'data': 2, 'fsdp': -1}."""
    sizes = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, eq, value = part.partition("=")
        if not eq or name not in sharding.MESH_AXES:
            raise argparse.ArgumentTypeError(f"--mesh: {part!r} is not AXIS=SIZE with AXIS in {sharding.MESH_AXES}")
        try:
            sizes[name] = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--mesh: size {value!r} of {name} is not an integer") from None
    return sizes


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]I?B|B)?\s*", text.upper())
    if not m:
        raise argparse.ArgumentTypeError(f"--max_shard_size: {text!r} is not a size like 5GB or 500MB")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2) or ""])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m agentlm.checkpoint.convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("hf-to-orbax", help="HF directory (config.json + safetensors) -> orbax model directory")
    a.add_argument("--hf_dir", required=True, help="local HF directory (safetensors are memory-mapped)")
    a.add_argument("--out", required=True, type=storage.path, help="model directory: local path or gs:// URL")
    a.add_argument("--mesh", type=parse_mesh, default={"fsdp": -1},
                   help="mesh sizes, e.g. fsdp=-1 or data=1,fsdp=4,tensor=2 (default: all devices on fsdp)")
    a.add_argument("--param_dtype", default=None,
                   help="stored parameter dtype (default: as in the files, which keeps HF -> orbax -> HF bit-identical;"
                        " Meta's Llama-2 files are float16, so pass float32 or bfloat16 to fine-tune)")
    a.add_argument("--dtype", default=None, help="compute dtype recorded in model_config.json "
                                                 "(default: the parameter dtype)")
    a.add_argument("--overwrite", action="store_true", help="replace an existing --out/params")
    b = sub.add_parser("orbax-to-hf", help="orbax model or training-run directory -> HF directory")
    b.add_argument("--ckpt", required=True, type=storage.path,
                   help="model or training-run directory: local path or gs:// URL")
    b.add_argument("--out", required=True, type=storage.path, help="HF directory: local path or gs:// URL")
    b.add_argument("--step", type=int, default=None, help="training-run step (default: latest)")
    b.add_argument("--mesh", type=parse_mesh, default={"fsdp": -1}, help="mesh to restore onto while exporting")
    b.add_argument("--dtype", default=None, help="dtype of the written tensors (default: the stored one)")
    b.add_argument("--max_shard_size", type=parse_size, default=parse_size("5GB"),
                   help="split the safetensors into files of at most this size (default 5GB)")
    b.add_argument("--tokenizer_dir", type=storage.path, default=None,
                   help="copy tokenizer files from here (default: the checkpoint directory, when it has them)")
    b.add_argument("--overwrite", action="store_true", help="write into a non-empty --out")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    start = time.time()
    # Multi-host: every process joins the job (coordinator from the environment, as `launch.local` and the TPU/
    # SLURM launchers set it) and restores its own shards; orbax-to-hf gathers each tensor across processes and
    # process 0 alone writes the files.
    distributed.initialize(distributed.default_config())
    try:
        mesh = sharding.make_mesh(args.mesh)
        if args.command == "hf-to-orbax":
            hf_dir = storage.local_path(args.hf_dir, "--hf_dir")
            cfg, params = load_hf(hf_dir, mesh=mesh, param_dtype=args.param_dtype, dtype=args.dtype)
            out = save(args.out, cfg, params, overwrite=args.overwrite)
            copied = copy_tokenizer_files(hf_dir, out)
        else:
            stale = sorted(args.out.glob("*.safetensors")) if args.out.exists() else []
            if stale and not args.overwrite:
                raise FileExistsError(f"{args.out} already holds safetensors files; pass --overwrite")
            cfg, params = load(args.ckpt, mesh=mesh, step=args.step)
            if jax.process_index() == 0:
                for path in stale:
                    path.unlink()
            out = save_hf(cfg, params, args.out, dtype=args.dtype, max_shard_bytes=args.max_shard_size)
            copied = copy_tokenizer_files(args.tokenizer_dir or args.ckpt, out)
    except (CheckpointError, FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    n = sum(x.size for x in jax.tree.leaves(params))
    print(f"wrote {out} ({n:,} parameters, {cfg.param_dtype}; tokenizer files: {copied or 'none'}) "
          f"in {time.time() - start:.1f}s, {jax.process_count()} process(es)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
