"""benchmarks/held_memory.py: live CUDA blocks summed by the Python lines that allocated them."""
from benchmark_scripts import load


def frame(path, line):
    return {"filename": path, "line": line, "name": "f"}


def test_blocks_are_summed_by_the_innermost_lines_outside_torch_and_free_ones_are_left_out():
    held = load("held_memory")
    stem = [frame("/x/torch/nn/functional.py", 5), frame("/a/infomamba/tasks/image/frontend.py", 74),
            frame("/a/infomamba/bench.py", 86), frame("??", 0)]
    torch_only = [frame("/x/torch/cuda/graphs.py", 9)]
    snapshot = {"segments": [
        {"blocks": [{"state": "active_allocated", "size": 2**20, "frames": stem},
                    {"state": "inactive", "size": 2**30, "frames": stem},
                    {"state": "active_allocated", "size": 32 * 2**20, "frames": []}]},
        {"blocks": [{"state": "active_allocated", "size": 3 * 2**20, "frames": stem},
                    {"state": "active_allocated", "size": 7, "frames": torch_only}]}]}
    size, count = held.live_blocks(snapshot)
    assert size == {"frontend.py:74 <- bench.py:86": 4 * 2**20, "?": 32 * 2**20, "graphs.py:9": 7}
    assert count["frontend.py:74 <- bench.py:86"] == 2
