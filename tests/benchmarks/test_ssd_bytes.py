"""benchmarks/ssd_bytes.py: ncu's CSV read into each kernel's DRAM bytes and time, split into forward and backward
by launch order, and the backward's bytes and time over the forward's per shape."""
import pytest

from benchmark_scripts import load

HEADER = '"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Section Name",' \
         '"Metric Name","Metric Unit","Metric Value"'


def ncu_lines(launches):
    """ncu --csv output for (kernel, bytes read, bytes written, ns) launches, with its own lines around them and the
    time in microseconds (a unit the reader must scale)."""
    lines = ["==PROF== Connected to process 7", "program output", HEADER]
    for i, (name, read, written, ns) in enumerate(launches):
        for metric, unit, value in (("dram__bytes_read.sum", "byte", f"{read:,}"),
                                    ("dram__bytes_write.sum", "Kbyte", str(written / 1e3)),
                                    ("gpu__time_duration.sum", "us", str(ns / 1e3)),
                                    ("lts__t_sectors_srcunit_tex_op_read.sum", "sector", str(read // 32)),
                                    ("sm__cycles_elapsed.avg", "cycle", "5")):
            lines.append(f'"{i}","7","python3","host","{name}","1","7","Command line profiler metrics",'
                         f'"{metric}","{unit}","{value}"')
    lines.append("==PROF== Disconnected from process 7")
    return lines


@pytest.fixture
def ssd_bytes():
    return load("ssd_bytes")


def test_kernels_scale_units_and_skip_other_lines_and_metrics(ssd_bytes):
    got = ssd_bytes.kernels(ncu_lines([("_ssd_fwd_kernel", 2_000_000, 500_000, 40_000)]))
    assert got == [{"name": "_ssd_fwd_kernel", "read": 2e6, "written": 5e5, "ns": 4e4, "l2_read": 2e6}]


def test_kernels_name_a_unit_they_cannot_scale(ssd_bytes):
    lines = ncu_lines([("_ssd_fwd_kernel", 1, 1, 1)])
    with pytest.raises(ValueError, match="gpu__time_duration.sum in unit 'fortnight'"):
        ssd_bytes.kernels([line.replace('"us"', '"fortnight"') for line in lines])


def test_table_splits_each_shape_into_forward_and_backward(ssd_bytes):
    launches = [("_ssd_fwd_kernel", 100, 100, 10), ("_ssd_bwd_walks_kernel", 200, 100, 10),
                ("_ssd_bwd_chunk_kernel", 300, 200, 30), ("reduce_kernel", 100, 0, 10),
                ("_ssd_fwd_kernel", 1000, 1000, 100), ("_ssd_bwd_walks_kernel", 2000, 1000, 200)]
    text = ssd_bytes.table(ssd_bytes.kernels(ncu_lines(launches)), ["2x64", "8x512"])
    summary = text.splitlines()[-2:]
    # 900 DRAM bytes over 200; L2 (reads, whole sectors of 32 bytes) 576 over 96; 50 ns over 10
    assert summary[0] == "| 2x64 | 0.0, 0.0, 20 | 0.0, 0.1, 18 | 4.50x, 6.00x, 5.00x |"
    assert summary[1].endswith("| 1.50x, 2.00x, 2.00x |")
    assert text.count("| 2x64 | backward |") == 3 and text.count("| 2x64 | forward |") == 1


def test_table_refuses_phases_that_do_not_match_the_shapes(ssd_bytes):
    launched = ssd_bytes.kernels(ncu_lines([("_ssd_fwd_kernel", 1, 1, 1), ("_ssd_bwd_walks_kernel", 1, 1, 1)]))
    with pytest.raises(ValueError, match="2 forward/backward phases for 2 shapes"):
        ssd_bytes.table(launched, ["2x64", "8x512"])
    with pytest.raises(ValueError, match="not the SSD forward"):
        ssd_bytes.phases(ssd_bytes.kernels(ncu_lines([("reduce_kernel", 1, 1, 1)])))


def test_parts_name_each_kernel_by_its_phase_and_the_plot_is_drawn(ssd_bytes, tmp_path):
    launched = ssd_bytes.kernels(ncu_lines([("_ssd_fwd_kernel", 1, 1, 1), ("_ssd_bwd_walks_kernel", 1, 1, 1),
                                            ("_ssd_bwd_chunk_kernel", 1, 1, 1), ("reduce_kernel", 1, 1, 1)]))
    forward, backward = ssd_bytes.phases(launched)
    assert [ssd_bytes.part(k) for k in forward] == ["forward walk (y)"]
    assert [ssd_bytes.part(k) for k in backward] == ["walks (states, state adjoints)", "chunk backward",
                                                      "torch sums and casts"]
    ssd_bytes.plot(launched, ["2x64"], str(tmp_path / "bytes.png"))
    assert (tmp_path / "bytes.png").stat().st_size > 1000
