"""TaskModule options shared by every task."""
from infomamba import EncoderConfig
from infomamba.tasks.text.module import TextClassifier


def test_compile_compiles_the_encoder_in_place_and_keeps_the_state_dict_keys():
    def build(compile: bool) -> TextClassifier:
        return TextClassifier(num_classes=3, vocab_size=11, encoder=EncoderConfig(dim=16, depth=1), compile=compile)

    plain, compiled = build(False), build(True)
    plain.configure_model()
    compiled.configure_model()
    assert compiled.hparams.compile and not plain.hparams.compile
    assert compiled.encoder._compiled_call_impl is not None and plain.encoder._compiled_call_impl is None
    assert compiled.state_dict().keys() == plain.state_dict().keys()


def test_compile_mode_reaches_torch_compile(monkeypatch):
    """`--compile=reduce-overhead` compiles with that mode; `--compile` (true) with the default one."""
    modes = []
    monkeypatch.setattr("infomamba.Encoder.compile", lambda self, **kw: modes.append(kw["mode"]))
    for compile in (True, "reduce-overhead"):
        TextClassifier(num_classes=3, vocab_size=11, encoder=EncoderConfig(dim=16, depth=1),
                       compile=compile).configure_model()
    assert modes == ["default", "reduce-overhead"]
