"""benchmarks/sass_loops.py: the scan kernels' loops from an sm_90 compile, per (t, d, n) element."""
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")
SCRIPT = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "benchmarks", "sass_loops.py")


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path_factory.mktemp("triton-cache"))
    run = subprocess.run([sys.executable, SCRIPT, "--candidates", "1", "--json"], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return {row["kernel"]: row for row in json.loads(run.stdout.strip().splitlines()[-1])}


def test_one_loop_forward_two_passes_backward(rows):
    assert len(rows["fwd"]["loops"]) == 1
    assert len(rows["bwd"]["loops"]) == 2  # pass 1 in scan order, pass 2 in reverse (the kernel's docstring)


def test_per_element_counts_see_one_exp_an_element_per_scan(rows):
    """Each loop takes one ex2 (MUFU) per (t, d, n) element, plus a few per (t, d) row (dt's softplus): a count per
    thread that divided by the wrong number of elements (threads, states or time steps off) leaves [1, 2)."""
    for kind in ("fwd", "bwd"):
        row = rows[kind]
        for loop in row["loops"]:
            mufu = loop["opcodes"]["MUFU"] / row["elements_per_thread"]
            assert 1.0 <= mufu < 2.0, (kind, row["config"], loop["opcodes"]["MUFU"], row["elements_per_thread"])
            assert loop["per_element"] == pytest.approx(loop["instructions"] / row["elements_per_thread"])
