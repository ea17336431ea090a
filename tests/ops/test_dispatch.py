from infomamba.ops import dispatch


def test_reference_switch_disables_every_kernel(monkeypatch):
    monkeypatch.setenv("INFOMAMBA_KERNELS", "reference")
    assert dispatch.kernel_for(len, "selective_scan", "op", on_cuda=True) is None
    monkeypatch.setenv("INFOMAMBA_KERNELS", "")
    assert dispatch.kernel_for(len, "selective_scan", "op", on_cuda=True) is len


def test_a_path_is_announced_once_per_op(monkeypatch, capsys):
    monkeypatch.setattr(dispatch, "_announced", set())
    for _ in range(3):
        dispatch.announce("op a", "kernel")
    dispatch.announce("op a", "reference")
    dispatch.announce("op b", "kernel")
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "[infomamba] op a: using the kernel path", "[infomamba] op a: using the reference path",
        "[infomamba] op b: using the kernel path"]
    assert out == ""  # stdout is for results (the tables of summary and bench), not diagnostics


def test_reference_switch_can_name_op_folders(monkeypatch):
    monkeypatch.setenv("INFOMAMBA_KERNELS", "reference:ssm_inner,concept_assign")
    assert dispatch.reference_forced("ssm_inner") and dispatch.reference_forced("concept_assign")
    assert not dispatch.reference_forced("selective_scan")
    assert dispatch.kernel_for(len, "ssm_inner", "op", on_cuda=True) is None
    assert dispatch.kernel_for(len, "selective_scan", "op", on_cuda=True) is len


def test_only_the_first_rank_prints_a_path(monkeypatch, capsys):
    monkeypatch.setattr(dispatch, "_announced", set())
    monkeypatch.setattr(dispatch.torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(dispatch.torch.distributed, "get_rank", lambda: 1)
    dispatch.announce("op a", "kernel")
    monkeypatch.setattr(dispatch.torch.distributed, "get_rank", lambda: 0)
    dispatch.announce("op b", "kernel")
    assert capsys.readouterr().err.splitlines() == ["[infomamba] op b: using the kernel path"]
