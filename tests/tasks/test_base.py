"""TaskModule options shared by every task."""
import copy
import types
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.trainer.states import TrainerFn

from infomamba import EncoderConfig
from infomamba.cli import main
from infomamba.mixers import Mixer, training_terms
from infomamba.tasks.base import (RunRefused, check_optimizer_options, classification_loss, fused_step,
                                  gathered_rng_states, list_of_inputs, own_rng_states, refused_precision)
from infomamba.tasks.asr.module import CTCSpeechRecognizer
from infomamba.tasks.image.module import ImageClassifier
from infomamba.tasks.text.module import TextClassifier
from infomamba.tasks.text.tokenizer import TextTokenizer

TINY_TEXT = ["--task", "text", "--data.listops_size=48", "--data.batch_size=16", "--model.encoder.dim=16",
             "--model.encoder.depth=1", "--model.encoder.mixer_options={k_max: 8, d_state: 4, d_concept: 8}",
             "--trainer.enable_progress_bar=false", "--trainer.num_sanity_val_steps=0",
             "--trainer.enable_model_summary=false", "--trainer.max_steps=1"]


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


def test_label_smoothing_applies_to_training_batches_only():
    logits = torch.tensor([[4.0, 0.0, -2.0], [0.5, 1.5, 0.0]])
    labels = torch.tensor([0, 1])
    plain = F.cross_entropy(logits, labels)
    smoothed = classification_loss(logits, labels, 0.2, "train")
    # with smoothing eps over 3 classes the target is (1 - eps) one-hot + eps / 3 everywhere
    target = torch.full((2, 3), 0.2 / 3) + 0.8 * F.one_hot(labels, 3)
    assert torch.allclose(smoothed, -(target * logits.log_softmax(-1)).sum(-1).mean())
    assert smoothed > plain
    for stage in ("val", "test"):
        assert torch.equal(classification_loss(logits, labels, 0.2, stage), plain)


def test_text_classifier_takes_label_smoothing_into_its_loss(monkeypatch):
    model = TextClassifier(num_classes=3, vocab_size=11, encoder=EncoderConfig(dim=16, depth=1), label_smoothing=0.3)
    model.configure_model()
    seen = []
    monkeypatch.setattr("infomamba.tasks.text.module.classification_loss",
                        lambda logits, labels, eps, stage: seen.append((eps, stage)) or F.cross_entropy(logits, labels))
    monkeypatch.setattr(model, "log", lambda *a, **k: None)
    batch = {"input_ids": torch.randint(1, 11, (2, 5)), "padding_mask": torch.zeros(2, 5, dtype=torch.bool),
             "labels": torch.tensor([0, 2])}
    model._step(batch, "train")
    assert seen == [(0.3, "train")]


def _text_model(**options) -> TextClassifier:
    return TextClassifier(num_classes=3, vocab_size=11, encoder=EncoderConfig(dim=16, depth=1), **options)


def test_cuda_graphs_and_compile_are_refused_together():
    with pytest.raises(ValueError, match="pick one"):
        _text_model(compile="reduce-overhead", cuda_graphs=True)


def test_cuda_graphs_keep_the_state_dict_and_a_copy_gets_its_own_encoder():
    """The graphed path holds the encoder, it is not a submodule: the checkpoint keys stay those of the plain model,
    and a deep copy (an averaged model) replays nothing of the original's."""
    plain, graphed = _text_model(), _text_model(cuda_graphs=True)
    assert graphed.state_dict().keys() == plain.state_dict().keys()
    clone = copy.deepcopy(graphed)
    assert clone.graphed_encoder.encoder is clone.encoder and clone.graphed_encoder.graphs == {}
    assert plain.graphed_encoder is None


@pytest.mark.parametrize("trainer_state, message", [({"world_size": 2, "accumulate_grad_batches": 1}, "one device"),
                                                     ({"world_size": 1, "accumulate_grad_batches": 4}, "set it to 1"),
                                                     ({"world_size": 1, "accumulate_grad_batches": 1},
                                                      "needs a CUDA device; this fit runs on cpu")])
def test_cuda_graphs_refuse_what_a_replay_cannot_do(trainer_state, message):
    model = _text_model(cuda_graphs=True)
    model._trainer = types.SimpleNamespace(**trainer_state)
    with pytest.raises(ValueError, match=message):
        model.on_fit_start()
    _text_model().on_fit_start()  # nothing to check without graphs


def test_each_rank_takes_its_own_saved_random_states():
    single = gathered_rng_states()  # one process: its own states, as checkpoints of earlier versions hold them
    assert isinstance(single, dict) and own_rng_states(single, 3) is single
    by_rank = [{"rank": 0}, {"rank": 1}]
    assert own_rng_states(by_rank, 1) == {"rank": 1}
    assert own_rng_states(by_rank, 2) is None  # a rank the saving run did not have starts from the seed
    assert own_rng_states(None, 0) is None


@pytest.mark.parametrize("fn, before, world_size, warned", [
    (TrainerFn.FITTING, 2, 1, True), (TrainerFn.FITTING, 1, 2, True), (TrainerFn.FITTING, 2, 2, False),
    (TrainerFn.FITTING, None, 2, False), (TrainerFn.VALIDATING, 2, 1, False)])
def test_a_fit_resumed_on_another_number_of_processes_is_told_how_it_differs(fn, before, world_size, warned):
    """A DDP fit of 2 ranks stopped mid-epoch and resumed with --trainer.devices=1 re-trained some of the epoch's
    batches and skipped others, and the schedule note blamed max_epochs, which the user had not changed. A checkpoint
    written before checkpoints kept the number (None) says nothing."""
    model = _text_model()
    model._trainer = types.SimpleNamespace(world_size=before or 1, global_rank=0, state=types.SimpleNamespace(fn=fn),
                                           datamodule=None)
    checkpoint = {}
    model.on_save_checkpoint(checkpoint)
    assert checkpoint["world_size"] == (before or 1)
    checkpoint["world_size"] = before
    model._trainer.world_size = world_size
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.on_load_checkpoint({**checkpoint, "global_step": 3})
    notes = [str(w.message) for w in caught if "resumes on" in str(w.message)]
    assert len(notes) == warned
    assert not warned or notes[0].startswith(f"this fit resumes on {world_size} process(es) (DDP ranks) a checkpoint "
                                             f"written by {before}: ") and f"resume on {before} process(es)" in notes[0]


@pytest.mark.parametrize("one", ["a great film", b"bytes", Path("a.flac")])
def test_a_single_input_where_a_list_is_taken_is_refused_saying_how(one):
    """A bare str was read character by character ("3 text(s) give no token", "cannot use audio /")."""
    with pytest.raises(TypeError, match=r"predict_texts takes a list of inputs; got one \w+: pass \["):
        _text_model().predict_texts(one)
    assert list_of_inputs(("a", "b"), "predict_texts", 1) == ["a", "b"]


def test_any_iterable_of_inputs_is_taken_as_the_list_of_them(tmp_path):
    """A generator or an open text file (its lines) had ended in "object of type 'generator' has no len()"."""
    tokenizer = TextTokenizer.utf8_bytes()
    model = TextClassifier(num_classes=2, vocab_size=tokenizer.vocab_size, pad_id=tokenizer.pad_id,
                           tokenizer=tokenizer, encoder=EncoderConfig(dim=16, depth=1)).eval()
    texts = ["a great film", "two dull hours"]
    (tmp_path / "texts.txt").write_text("\n".join(texts) + "\n")
    with open(tmp_path / "texts.txt") as lines:
        from_file = model.predict_texts(lines)
    expected = model.predict_texts(texts)
    assert model.predict_texts(text for text in texts) == expected
    assert from_file == [{**row, "text": row["text"] + "\n"} for row in expected]  # each line as read


@pytest.mark.parametrize("one", [torch.zeros(400), torch.zeros(400).numpy()], ids=["tensor", "ndarray"])
def test_one_waveform_or_binary_file_where_a_list_is_taken_is_refused_saying_how(one, tmp_path):
    with pytest.raises(TypeError, match=r"^transcribe takes a list of inputs; got one \w+ of shape \(400,\): pass \["):
        list_of_inputs(one, "transcribe", 1)
    (tmp_path / "a.flac").write_bytes(b"fLaC")
    with open(tmp_path / "a.flac", "rb") as file, pytest.raises(TypeError, match=r"got one BufferedReader: pass \["):
        list_of_inputs(file, "transcribe", 1)
    with pytest.raises(TypeError, match=r"^transcribe takes a list of inputs, got NoneType$"):
        list_of_inputs(None, "transcribe", 1)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_a_batch_size_that_is_not_a_positive_whole_number_is_refused(batch_size):
    """0 had been range()'s "arg 3 must not be zero", 2.5 a slice's TypeError, deep in the method."""
    with pytest.raises(ValueError, match=r"^predict_texts: batch_size must be a whole number >= 1, got "):
        _text_model().predict_texts(["a great film"], batch_size=batch_size)


@pytest.mark.parametrize("options, words", [
    ({"lr": -1.0}, r"model: lr must be >= 0, got -1.0"),
    ({"weight_decay": -0.1}, r"model: weight_decay must be >= 0, got -0.1"),
    ({"warmup_ratio": 2.0}, r"model: warmup_ratio must be in \[0, 1\), got 2.0"),
    ({"min_lr_ratio": 1.5}, r"model: min_lr_ratio must be in \[0, 1\], got 1.5"),
    ({"betas": (0.9, 1.0)}, r"model: betas\[1\] must be in \[0, 1\), got 1.0"),
    ({"lr": float("nan")}, r"model: lr must be >= 0, got nan"),
])
def test_optimizer_options_out_of_range_are_named(options, words):
    given = {"lr": 1e-3, "weight_decay": 0.05, "betas": (0.9, 0.98), "warmup_ratio": 0.05, "min_lr_ratio": 0.01,
             **options}
    with pytest.raises(ValueError, match=f"^{words}$"):
        check_optimizer_options(**given)


@pytest.mark.parametrize("devices, precision, fused", [
    ({"cuda"}, "bf16-mixed", True), ({"cuda"}, "32-true", True), ({"cuda"}, "16-true", True),
    ({"cuda"}, "16-mixed", False), ({"cpu"}, "bf16-mixed", False), ({"cuda", "cpu"}, "32-true", False)])
def test_adamw_is_fused_on_cuda_unless_a_gradient_scaler_unscales_before_clipping(devices, precision, fused):
    assert fused_step(devices, precision) is fused


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_the_configured_adamw_is_fused_where_the_parameters_and_precision_allow(precision):
    """On a CPU machine the step stays torch's default; on a GPU machine the model on CUDA gets the fused step
    except under 16-mixed."""
    model = _text_model()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)._trainer = types.SimpleNamespace(precision=precision, estimated_stepping_batches=10, world_size=1)
    optimizer = model.configure_optimizers()["optimizer"]
    assert bool(optimizer.defaults["fused"]) is (device == "cuda" and precision != "16-mixed")
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(model.parameters()))


@pytest.mark.parametrize("algorithm, clip", [("norm", "clip_grad_norm_"), ("value", "clip_grad_value_")])
def test_a_fused_step_under_bf16_mixed_has_its_gradients_clipped(tmp_path, monkeypatch, algorithm, clip):
    """Lightning's mixed-precision plugin refuses to clip gradients for a fused AdamW (a step that unscales inside),
    though bf16-mixed has no scaler: the fit stopped at its first step. The task clips with Lightning's plain
    precision there, by the configured algorithm and value. Fused AdamW on the CPU stands in for the GPU's."""
    import infomamba.tasks.base as base

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(base, "fused_step", lambda devices, precision: True)
    clipped, clip_fn = [], getattr(torch.nn.utils, clip)

    def recording(parameters, *args, **kwargs):
        clipped.append([*args, *kwargs.values()][0])  # the norm or value, positional or by keyword
        return clip_fn(parameters, *args, **kwargs)
    monkeypatch.setattr(torch.nn.utils, clip, recording)
    fused = []
    monkeypatch.setattr(base.TaskModule, "on_before_optimizer_step",
                        lambda self, optimizer: fused.append(optimizer.defaults["fused"]), raising=False)
    main(["fit", *TINY_TEXT, "--trainer.precision=bf16-mixed", "--trainer.gradient_clip_val=0.25",
          f"--trainer.gradient_clip_algorithm={algorithm}", "--trainer.accelerator=cpu", "--trainer.logger=false",
          "--trainer.enable_checkpointing=false"])
    assert fused == [True] and clipped == [0.25]


def test_the_model_refuses_an_optimizer_option_when_built_and_the_cli_says_it_in_one_line(tmp_path, monkeypatch):
    """A negative lr had been a 45-line traceback from torch's Adam; a warmup_ratio of 2 had been taken silently."""
    with pytest.raises(ValueError, match=r"^model: warmup_ratio must be in \[0, 1\), got 2$"):
        _text_model(warmup_ratio=2)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"^infomamba fit --task text: invalid configuration: model: lr must be >= 0, "
                                         r"got -1.0$"):
        main(["fit", *TINY_TEXT, "--model.lr=-1"])


@pytest.mark.parametrize("build", [
    lambda smoothing: _text_model(label_smoothing=smoothing),
    lambda smoothing: ImageClassifier(num_classes=2, encoder=EncoderConfig(dim=16, depth=1), image_size=16,
                                      patch_size=8, label_smoothing=smoothing),
])
def test_label_smoothing_out_of_range_is_refused_when_the_model_is_built(build):
    """3 had stopped the first batch in cross_entropy."""
    for smoothing in (3.0, 1.0, -0.1):
        with pytest.raises(ValueError, match=rf"^model: label_smoothing must be in \[0, 1\), got {smoothing}$"):
            build(smoothing)
    build(0.1)


def test_load_from_checkpoint_names_the_model_a_checkpoint_of_another_task_belongs_to(tmp_path):
    """It had been TextClassifier's TypeError about a missing num_classes."""
    asr = tmp_path / "asr.ckpt"
    torch.save({"infomamba_module": "infomamba.tasks.asr.module:CTCSpeechRecognizer", "hyper_parameters": {}}, asr)
    with pytest.raises(ValueError, match=rf"^TextClassifier.load_from_checkpoint: {asr} is a checkpoint of "
                                         r"CTCSpeechRecognizer \(--task asr\), not of TextClassifier: use "
                                         r"CTCSpeechRecognizer.load_from_checkpoint$"):
        TextClassifier.load_from_checkpoint(asr)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(asr.read_bytes()[:100])
    with pytest.raises(ValueError, match=rf"^ImageClassifier.load_from_checkpoint: {truncated} is not a checkpoint "
                                         r"Lightning saved \(torch.load: RuntimeError\)$"):
        ImageClassifier.load_from_checkpoint(truncated)


def test_load_from_checkpoint_loads_its_own_models_checkpoint(tmp_path):
    model = _text_model()
    path = tmp_path / "text.ckpt"
    torch.save({"infomamba_module": "infomamba.tasks.text.module:TextClassifier", "state_dict": model.state_dict(),
                "hyper_parameters": dict(model.hparams), "pytorch-lightning_version": "2.6.6"}, path)
    loaded = TextClassifier.load_from_checkpoint(path)
    assert torch.equal(loaded.pos, model.pos)


def test_64_bit_precision_is_refused_in_one_line_before_the_first_batch(tmp_path, monkeypatch):
    """It had been a dtype mismatch 53 frames deep in the concept filter's hashing."""
    assert [refused_precision(p) for p in ("32-true", "16-mixed", "bf16-mixed", "bf16-true", "16-true")] == [None] * 5
    for model in (_text_model(), CTCSpeechRecognizer(EncoderConfig(dim=16, depth=1))):
        model._trainer = types.SimpleNamespace(precision="64-true", ckpt_path=None)
        with pytest.raises(RunRefused, match="^trainer.precision=64-true is not supported"):
            model.setup("fit")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"^infomamba fit --task text: trainer.precision=64-true is not supported .*; "
                                         r"use 32-true, 16-mixed, bf16-mixed, bf16-true or 16-true$"):
        main(["fit", *TINY_TEXT, "--trainer.precision=64"])


def test_predictions_leave_out_the_mixers_loss_terms_and_steps_keep_them():
    """The predict step (Lightning's predictions and `predict_images`) runs the mixers without the terms only a loss
    reads; a training step runs them with; `predicting` (the library's predictions) restores the mode and the terms
    even when the prediction raised."""
    torch.manual_seed(0)
    model = ImageClassifier(num_classes=2, encoder=EncoderConfig(dim=16, depth=1), image_size=16, patch_size=4,
                            class_names=["a", "b"])
    seen = []
    for module in model.modules():
        if isinstance(module, Mixer):
            module.register_forward_pre_hook(lambda *_: seen.append(training_terms()))
    images = torch.randn(2, 3, 16, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log without a trainer
        model._step({"images": images, "labels": torch.tensor([0, 1])}, "train")
    with torch.no_grad():
        rows = model.predict_step({"images": images, "paths": ["x.png", "y.png"]}, 0)
    assert seen == [True, False] and [row["path"] for row in rows] == ["x.png", "y.png"]
    with pytest.raises(RuntimeError, match="stop"):
        with model.predicting():
            assert not model.training and not training_terms()
            raise RuntimeError("stop")
    assert model.training and training_terms()
