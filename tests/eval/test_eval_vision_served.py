"""`agentlm.eval.agent --tasks miniwob_vision` through agentlm's OpenAI server: every screenshot travels as an
image part (data URL), the server turns it into patches at the placeholder tokens, and a stand-in model that
reads only those patches (it finds the text box's border in the pixels) solves focus-text. A wrong patch order, a
lost image or a mangled data URL would make it miss."""
import base64
import concurrent.futures
import json
import types

import numpy as np
import pytest

from agentlm.data import images
from agentlm.envs.agents import to_openai_messages
from agentlm.infer.generate import GenerationResult
from agentlm.model.config import VisionConfig
from tests.eval.test_eval_agent import _config

WIDTH, HEIGHT, PATCH = 80, 104, 8


def test_observation_parts_become_data_url_image_parts(tmp_path):
    pixels = np.arange(8 * 16 * 3, dtype=np.uint8).reshape(8, 16, 3)
    data = images.encode_png(pixels)
    (tmp_path / "s.png").write_bytes(data)
    part = {"type": "image", "path": str(tmp_path / "s.png"), "sha256": images.sha256(data)}
    conv = [{"from": "human", "value": [{"type": "text", "text": "Task: click."}, part]},
            {"from": "gpt", "value": "Act: click 1,2"}, {"from": "human", "value": "plain"}]
    msgs = to_openai_messages(conv)
    text, image = msgs[0]["content"]
    assert text == {"type": "text", "text": "Task: click."} and msgs[1:] == [
        {"role": "assistant", "content": "Act: click 1,2"}, {"role": "user", "content": "plain"}]
    url = image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert (images.decode(base64.b64decode(url.split(",", 1)[1])) == pixels).all()


class PixelEngine:
    """Stands in for InferenceEngine: answers `Act: click X,Y` at the centre of the non-white, non-yellow pixels
    below MiniWoB's instruction bar, read from the request's image patches alone."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.cfg = types.SimpleNamespace(max_position_embeddings=2048, vocab_size=tokenizer.vocab_size,
                                         eos_token_id=tokenizer.eos_id, vision=VisionConfig(patch_size=PATCH))
        self.images_seen = 0

    def _reply(self, row) -> str:
        patches = np.asarray(row.image_patches)
        assert len(patches) == (WIDTH // PATCH) * (HEIGHT // PATCH) == int(np.sum(row.image_mask))
        grid = patches.reshape(HEIGHT // PATCH, WIDTH // PATCH, PATCH, PATCH, 3).transpose(0, 2, 1, 3, 4)
        pixels = grid.reshape(HEIGHT, WIDTH, 3).astype(int)
        self.images_seen += 1
        white = (pixels > 235).all(-1)
        yellow = (pixels[..., 0] > 200) & (pixels[..., 1] > 200) & (pixels[..., 2] < 80)
        ys, xs = np.nonzero(~white & ~yellow)
        ys, xs = ys[ys > 30], xs[ys > 30]          # below the instruction bar
        return f"Act: click {int(xs.mean())},{int(ys.mean())}"

    def submit_generate(self, rows, on_update=None):
        future = concurrent.futures.Future()
        future.set_result([GenerationResult(self.tokenizer.encode(self._reply(r)), "stop", self.tokenizer.eos_id)
                           for r in rows])
        return future

    def submit_score(self, *args, **kwargs):
        raise AssertionError("not used")


@pytest.mark.slow
def test_eval_agent_plays_miniwob_vision_through_the_server(tmp_path):
    from agentlm.data.tokenizer import load_tokenizer
    from agentlm.envs import registry
    from agentlm.eval import agent
    from agentlm.infer import OpenAIServer
    from tests.conftest import shared_path

    problem = registry.get("miniwob_vision").problem()
    if problem:
        pytest.skip(problem)
    engine = PixelEngine(load_tokenizer(shared_path("models", "stories260K-hf")))
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps({"task": "focus-text", "seed": s}) + "\n" for s in range(4)))
    with OpenAIServer(engine, "pixels", port=0) as server:
        config = _config(tmp_path, model=server.url, tasks="miniwob_vision", workers=2, max_tokens=32,
                         **{"miniwob_vision.data_file": str(items)})
        summary = agent.run(config)
    result = summary["tasks"]["miniwob_vision"]
    assert result["n"] == 4 and result["score"] == 100.0, result
    assert engine.images_seen == 4
