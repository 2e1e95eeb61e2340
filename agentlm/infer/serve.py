"""An OpenAI-compatible HTTP server over an InferenceEngine (FastAPI on uvicorn).

    python -m agentlm.infer.serve --ckpt runs/converted/agentlm_7b [--tokenizer PATH] [--template llama2]
                                  [--host 127.0.0.1 --port 8000] [--api-key KEY] [--mesh fsdp=-1]

Endpoints: POST /v1/completions, POST /v1/chat/completions (both with "stream": true as server-sent
events; chat with `tools` / `tool_choice`, agentlm.infer.tool_calls), GET /v1/models, GET /health, vLLM's
tokenizer endpoints (POST /tokenize, POST /detokenize, GET /tokenizer_info) so lm-evaluation-harness can use
the server's own tokenizer (`tokenizer_backend=remote`), and the OpenAPI page at /docs. Concurrent requests
are batched by the engine's scheduler. In-process (tests, notebooks):

    with OpenAIServer(InferenceEngine(cfg, params, tokenizer), port=0) as server:
        client = openai.OpenAI(base_url=server.url, api_key="unused")
"""
from __future__ import annotations

import argparse
import logging
import os
import pathlib
import socket
import sys
import threading
import time

from agentlm.infer import openai_api as api
from agentlm.infer.engine import InferenceEngine

log = logging.getLogger("agentlm.infer.serve")


class OpenAIServer:
    """Binds the socket at construction (so `port` is known with port=0); `start()` serves on a background
    thread, `serve_forever()` on this one."""

    def __init__(self, engine: InferenceEngine, model_name: str = "agentlm", *, template: str = "llama2",
                 api_key: str | None = None, limits: api.Limits | None = None, host: str = "127.0.0.1",
                 port: int = 8000, request_timeout_s: float = 3600.0):
        import uvicorn

        from agentlm.infer.openai_routes import BodyLimit, build_app

        cfg, tok = engine.cfg, engine.tokenizer
        self.engine, self.model_name, self.template, self.api_key = engine, model_name, template, api_key
        self.limits = limits or api.Limits(max_model_len=cfg.max_position_embeddings,
                                           max_prompt_tokens=cfg.max_position_embeddings - 1,
                                           max_tokens=cfg.max_position_embeddings)
        self.request_timeout_s = request_timeout_s
        self.token_strings = api.TokenStrings(tok)
        eos = tok.eos_id if tok is not None and tok.eos_id is not None else cfg.eos_token_id
        self.completion_stop_ids = (eos,)
        self.chat_stop_ids = (eos,)
        if tok is not None:
            from agentlm.data.template import stop_ids
            self.chat_stop_ids = tuple(stop_ids(tok, template))
        self.app = build_app(self)
        self.socket = socket.create_server((host, port), reuse_port=False)
        config = uvicorn.Config(BodyLimit(self.app, self.limits.max_body_bytes), log_level="warning",
                                timeout_keep_alive=120, access_log=False, lifespan="off")
        self.uvicorn = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.socket.getsockname()[1]

    @property
    def url(self) -> str:
        """Base URL for OpenAI clients (ends in /v1)."""
        return f"http://{self.socket.getsockname()[0]}:{self.port}/v1"

    def start(self, timeout: float = 30.0) -> "OpenAIServer":
        self._thread = threading.Thread(target=self.serve_forever, name="agentlm-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.uvicorn.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP server did not start on port {self.port}")
            time.sleep(0.01)
        return self

    def serve_forever(self) -> None:
        self.uvicorn.run(sockets=[self.socket])

    def shutdown(self) -> None:
        self.uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self.socket.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.shutdown()


# ---- command line -------------------------------------------------------------------------------------

def _parse_mesh(text: str | None):
    if not text:
        return None
    from agentlm import sharding

    sizes = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            sizes[name.strip()] = int(value)
        except ValueError:
            raise SystemExit(f"--mesh: bad entry {part!r}; expected e.g. data=1,fsdp=-1,tensor=1") from None
    return sharding.make_mesh(sizes)


def load_model(ckpt: str, mesh=None, dtype: str | None = None, step: int | None = None):
    """(cfg, params) from an agentlm model/run directory (model_config.json) or a Hugging Face directory."""
    from agentlm import checkpoint

    path = pathlib.Path(ckpt)
    if (path / "model_config.json").is_file():
        return checkpoint.load(path, mesh=mesh, step=step, config_overrides={"dtype": dtype} if dtype else None)
    if (path / "config.json").is_file():
        return checkpoint.load_hf(path, mesh=mesh, dtype=dtype)
    raise SystemExit(f"--ckpt {ckpt}: neither an agentlm checkpoint (model_config.json) nor a Hugging Face "
                     "directory (config.json)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m agentlm.infer.serve", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--ckpt", required=True, help="agentlm model/run directory, or a Hugging Face Llama directory")
    p.add_argument("--step", type=int, default=None, help="checkpoint step of a run directory (default latest)")
    p.add_argument("--tokenizer", default=None, help="tokenizer.model / tokenizer.json (default: found in --ckpt)")
    p.add_argument("--template", default="llama2", help="chat template for /v1/chat/completions")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--served-model-name", default=None, help="model id clients send (default: --ckpt's name)")
    p.add_argument("--api-key", default=os.environ.get("AGENTLM_API_KEY"),
                   help="require 'Authorization: Bearer KEY' (default: $AGENTLM_API_KEY; unset = open)")
    p.add_argument("--mesh", default=None, help="shard over devices, e.g. fsdp=-1 or data=1,fsdp=4,tensor=2")
    p.add_argument("--dtype", default=None, help="compute dtype override, e.g. bfloat16")
    p.add_argument("--cpu-tuning", default=None, help="XLA:CPU flags: auto (per detected CPU, agentlm.cpu_tuning), "
                   "off, or explicit --xla_... flags; default $AGENTLM_CPU_TUNING, else auto")
    p.add_argument("--max-batch-rows", type=int, default=32, help="rows per batched device call")
    p.add_argument("--batch-wait-ms", type=float, default=5.0, help="how long the scheduler gathers requests")
    p.add_argument("--min-batch-rows", type=int, default=8, help="pad smaller batches to this many rows "
                   "(fewer compiled shapes)")
    p.add_argument("--max-model-len", type=int, default=None, help="prompt + completion tokens "
                   "(default: the model's max_position_embeddings)")
    p.add_argument("--max-tokens", type=int, default=None, help="largest max_tokens a request may ask for")
    p.add_argument("--max-body-bytes", type=int, default=4 << 20)
    p.add_argument("--no-warmup", action="store_true", help="skip compiling a small batch before serving")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from agentlm import cpu_tuning

    try:
        log.info("%s", cpu_tuning.apply(args.cpu_tuning))
    except ValueError as err:
        raise SystemExit(f"--cpu-tuning: {err}") from None
    from agentlm.data.tokenizer import load_tokenizer
    from agentlm.infer.generate import GenerationRequest

    tok_path = args.tokenizer or args.ckpt
    try:
        tokenizer = load_tokenizer(tok_path)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"tokenizer: {err} (pass --tokenizer)") from None
    mesh = _parse_mesh(args.mesh)
    cfg, params = load_model(args.ckpt, mesh, args.dtype, args.step)
    if tokenizer.vocab_size > cfg.vocab_size:
        raise SystemExit(f"tokenizer {tok_path} has {tokenizer.vocab_size} tokens but the model only "
                         f"{cfg.vocab_size}")
    engine = InferenceEngine(cfg, params, tokenizer, mesh, max_batch_rows=args.max_batch_rows,
                             batch_wait_s=args.batch_wait_ms / 1000, min_batch_rows=args.min_batch_rows)
    model_len = args.max_model_len or cfg.max_position_embeddings
    limits = api.Limits(max_model_len=model_len, max_prompt_tokens=model_len - 1,
                        max_tokens=args.max_tokens or model_len, max_body_bytes=args.max_body_bytes)
    if not args.no_warmup:
        log.info("compiling a warm-up batch")
        engine.generate([GenerationRequest([tokenizer.bos_id or 0], 1)])
    name = args.served_model_name or pathlib.Path(args.ckpt).resolve().name
    server = OpenAIServer(engine, name, template=args.template, api_key=args.api_key, limits=limits,
                          host=args.host, port=args.port)
    log.info("serving %s at %s (api key %s)", name, server.url, "required" if args.api_key else "off")
    try:
        server.serve_forever()  # uvicorn handles Ctrl-C / SIGTERM with a graceful shutdown
    except KeyboardInterrupt:  # uvicorn re-raises the signal once it has shut down
        pass
    finally:
        server.socket.close()
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
