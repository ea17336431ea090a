"""benchmarks/ssd_resources.py: the SSD kernels' registers, spill and shared memory from an sm_90 compile, and the
programs an SM holds by each."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")
SCRIPT = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "benchmarks", "ssd_resources.py")


def table(tmp_path, *args: str) -> list[list[str]]:
    """The rows of the script's table, run with `args`."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path / "triton-cache")
    run = subprocess.run([sys.executable, SCRIPT, *args], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in run.stdout.splitlines()[2:]]


def test_every_kernel_is_reported_with_the_programs_its_registers_and_shared_memory_allow(tmp_path):
    rows = table(tmp_path, "--warps", "8")
    assert [row[0] for row in rows] == ["forward walk (y)", "the backward's walks (states, state adjoints)",
                                        "chunk backward (shipped)", "chunk backward"]
    for name, launch, registers, spill, shared_kib, instructions, programs in rows:
        warps = int(launch.split(",")[0])
        by_registers, by_shared = map(int, programs.split(" / "))
        threads = 32 * warps
        assert by_registers * int(registers) * threads <= 65536 < (by_registers + 1) * int(registers) * threads, name
        assert by_shared * float(shared_kib) <= 228 < (by_shared + 1) * float(shared_kib) + 0.1, name
        assert int(spill.split()[0]) >= 0 and int(instructions) > 100, name
    assert rows[-1][1].startswith("8,") and not rows[-2][1].startswith("8,")


def test_kernels_are_compiled_with_the_launchs_divisibility(tmp_path):
    """Triton specialises a launch for its 16-byte aligned tensors and multiples of 16: x, dy and dx then move in
    vectors, not one scalar access with its own address each, so every kernel that reads them compiles to fewer
    instructions than without the hints (--no-hints)."""
    hinted, plain = table(tmp_path), table(tmp_path, "--no-hints")
    assert [row[0] for row in hinted] == [row[0] for row in plain]
    for with_hints, without in zip(hinted, plain):
        assert int(with_hints[5]) < int(without[5]), (with_hints, without)
