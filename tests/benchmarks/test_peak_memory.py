"""benchmarks/peak_memory.py: the allocator trace replayed to its peak, the blocks live then summed by site."""
import collections

from benchmark_scripts import load


def alloc(addr, size, where):
    return {"action": "alloc", "addr": addr, "size": size, "frames": [{"filename": f"/a/{where}", "line": 1}]}


def free(addr, size, action="free_completed"):
    return {"action": action, "addr": addr, "size": size, "frames": []}


def test_the_peak_counts_blocks_until_the_allocator_takes_them_back_and_frees_of_earlier_blocks():
    peak = load("peak_memory")
    events = [alloc(1, 50, "x.py"), alloc(2, 30, "y.py"),  # 100 held -> 180
              free(1, 50, "free_requested"), alloc(3, 5, "y.py"),  # requested only: still live, 185
              free(1, 50), free(9, 40),  # A back, and a block of the 100 held before: 95
              alloc(4, 60, "x.py"), alloc(5, 60, "z.py"),  # 215: the peak
              free(4, 60), alloc(6, 10, "x.py")]  # 165
    got = peak.peak_of_trace(events, held=100)
    assert got.bytes == 215
    assert got.at == "z.py:1"
    assert got.by_site == {peak.BEFORE: 60, "y.py:1": 35, "x.py:1": 60, "z.py:1": 60}


def test_a_trace_that_only_frees_peaks_where_it_began():
    peak = load("peak_memory")
    got = peak.peak_of_trace([free(9, 40)], held=100)
    assert (got.bytes, got.at, dict(got.by_site)) == (100, "(no allocation)", {peak.BEFORE: 100})


def test_lines_of_generated_code_are_summed_by_their_source_text(tmp_path):
    peak = load("peak_memory")
    generated = tmp_path / "cabc.py"
    generated.write_text("buf1 = empty_strided_cuda((4, 4), (4, 1), torch.bfloat16)\n"
                         "buf27 = empty_strided_cuda((4, 4), (4, 1), torch.bfloat16)\n"
                         "buf3 = empty_strided_cuda((8, 4), (4, 1), torch.bfloat16)\n")
    frames = [{"filename": str(generated), "line": 1}, {"filename": "/a/infomamba/layers/concepts.py", "line": 1}]
    files = peak.generated_files([{"action": "alloc", "frames": frames}], str(tmp_path))
    assert files == {"cabc.py": str(generated)}
    sites = {"cabc.py:1 <- cabc.py:9": 16, "cabc.py:2 <- cabc.py:9": 16, "cabc.py:3 <- cabc.py:9": 32,
             "concepts.py:1 <- infomamba.py:122": 5, peak.BEFORE: 7}
    got = peak.by_source(collections.Counter(sites), files)
    assert got == {"buf = empty_strided_cuda((4, 4), (4, 1), torch.bfloat16)  [cabc.py]": 32,
                   "buf = empty_strided_cuda((8, 4), (4, 1), torch.bfloat16)  [cabc.py]": 32,
                   "concepts.py:1 <- infomamba.py:122": 5, peak.BEFORE: 7}
