from infomamba.ops import dispatch


def test_reference_switch_disables_every_kernel(monkeypatch):
    monkeypatch.setenv("INFOMAMBA_KERNELS", "reference")
    assert dispatch.load_kernel("selective_scan", "selective_scan_triton") is None
    monkeypatch.setenv("INFOMAMBA_KERNELS", "")
    assert callable(dispatch.load_kernel("selective_scan", "selective_scan_triton"))


def test_a_path_is_announced_once_per_op(monkeypatch, capsys):
    monkeypatch.setattr(dispatch, "_announced", set())
    for _ in range(3):
        dispatch.announce("op a", "kernel")
    dispatch.announce("op a", "reference")
    dispatch.announce("op b", "kernel")
    assert capsys.readouterr().out.splitlines() == [
        "[infomamba] op a: using the kernel path", "[infomamba] op a: using the reference path",
        "[infomamba] op b: using the kernel path"]
