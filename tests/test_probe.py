"""Latent-space probes: kNN leave-one-out, cross-validated LDA, mel baseline, labels, and the CLI on FSDD."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import run_in_process

from audiogen import config
from audiogen.audio.mel import log_mel
from audiogen.errors import ConfigError
from audiogen.pipeline import build_pipeline
from audiogen.settings import audio_settings
from audiogen.workflows.probe import (
    Item,
    dataset_representations,
    knn_lda_cv,
    knn_leave_one_out,
    lda_fit,
    model_representations,
    read_labels,
    time_average,
)


def test_leave_one_out_never_counts_the_item_itself():
    # Each point's nearest *other* point belongs to the other class: 0 when the item is left out (it would be
    # 1.0 if the item could vote for itself).
    x = np.array([[0.0], [10.0], [1.0], [11.0]])
    y = np.array([0, 0, 1, 1])
    assert knn_leave_one_out(x, y, [1])[1] == 0.0


def test_knn_separable_clusters_and_ties():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (20, 3)), rng.normal(5, 0.1, (20, 3))])
    y = np.repeat([0, 1], 20)
    assert knn_leave_one_out(x, y, [1, 5]) == {1: 1.0, 5: 1.0}
    # k = 2 with one neighbour of each class: the nearer one decides
    x = np.array([[0.0], [1.0], [3.0], [10.0], [11.0]])
    y = np.array([0, 0, 1, 1, 1])
    # item 0: neighbours 1 (class 0, nearer) and 2 (class 1) -> class 0, right
    from audiogen.workflows.probe import _vote

    order = torch.tensor([[1, 2]])
    assert int(_vote(torch.from_numpy(y)[order], 2, 2)[0]) == 0


def test_lda_finds_the_discriminative_direction():
    rng = np.random.default_rng(1)
    n = 200
    y = rng.integers(0, 2, n)
    x = rng.normal(0, 5.0, (n, 6))  # loud nuisance dimensions
    x[:, 3] = y * 2.0 + rng.normal(0, 0.3, n)  # quiet but discriminative
    w = lda_fit(x, y, 1)[:, 0]
    assert np.argmax(np.abs(w) * x.std(0)) == 3


def test_cross_validated_lda_does_not_leak_labels():
    # Random labels in many dimensions: an LDA fitted on all items separates them perfectly (labels leak into
    # the space); the cross-validated read-out stays near chance.
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(60, 50)), np.repeat([0, 1], 30)
    w = lda_fit(x, y, 1)
    leaky = knn_leave_one_out(x @ w, y, [1])[1]
    honest = knn_lda_cv(x, y, [1, 5], dims=1, folds=10)
    assert leaky > 0.9
    assert honest[1] < 0.7 and honest[5] < 0.7


def test_log_mel_shape_and_tone_band():
    sr, hop = 8000, 64
    t = np.arange(int(0.5 * sr)) / sr
    m = log_mel(0.5 * np.sin(2 * np.pi * 1000 * t), sr, hop, n_mels=40)
    assert m.shape == (40, -(-len(t) // hop))
    m2 = log_mel(0.5 * np.sin(2 * np.pi * 3000 * t), sr, hop, n_mels=40)
    assert m[:, 10:-10].mean(1).argmax() < m2[:, 10:-10].mean(1).argmax()


def test_time_average_covers_the_segment():
    z = np.arange(10, dtype=float)[None]  # frame k has value k, hop 100 at 1 kHz -> frame k spans [0.1k, 0.1k+0.1)
    assert time_average(z, 100, 1000, 1000, None, None)[0] == 4.5
    assert time_average(z, 100, 1000, 1000, 0.2, 0.4)[0] == 2.5  # frames 2 and 3
    assert time_average(z, 100, 1000, 950, None, None)[0] == 4.5  # the partial last frame still counts
    assert time_average(z, 100, 1000, 1000, 0.25, 0.26)[0] == 2.0  # a segment inside one frame


def test_read_labels_resolution_filters_and_errors(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    csv = tmp_path / "labels.csv"
    csv.write_text("path,digit,split,start,end\n" + "".join(f"a.wav,{i % 2},{'test' if i < 4 else 'train'},0,1\n"
                                                          for i in range(8)))
    items, labels = read_labels(csv, where={"split": "test"})
    assert labels == ["digit"] and len(items) == 4
    assert items[0].path == (tmp_path / "a.wav").resolve() and items[0].start == 0 and items[0].end == 1
    with pytest.raises(ConfigError, match="'speaker'"):
        read_labels(csv, ["speaker"])
    bad = tmp_path / "nopath.csv"
    bad.write_text("file,digit\na.wav,1\n")
    with pytest.raises(ConfigError, match="no 'path' column"):
        read_labels(bad)
    swapped = tmp_path / "swapped.csv"
    swapped.write_text("path,digit,start,end\n" + "a.wav,1,2,1\n" * 4)
    with pytest.raises(ConfigError, match="line 2: end 1.0 <= start 2.0"):
        read_labels(swapped)


def test_temporal_vae_probes_each_level(tmp_path):
    from audiogen.synth import write_corpus

    config.parse(["pipelines/cwvae_l2_speech.gin"], ["DZ=4", "HIDDEN=8", "ENCODER_CHANNELS=8",
                                                     "DECODER_CHANNELS=8", "COMPONENTS=2", "DMOL_PARAMS=6"])
    pipe = build_pipeline().eval()
    paths = write_corpus(tmp_path, n_speakers=2, utterances_per_speaker=2, seconds=0.3, seed=3)
    items = [Item(p, {"speaker": p.name.split("_")[0]}) for p in paths]
    reps = model_representations(pipe, items, audio_settings(), mel=True, n_mels=20)
    assert [(r.name, r.hop) for r in reps] == [("z1", 64), ("z2", 512), ("mel", 64)]
    assert [r.matrix().shape for r in reps] == [(4, 4), (4, 4), (4, 20)]


def test_probe_cli_on_fsdd_checkpoint_and_dataset_agree(shared, tmp_path, tiny_run):
    """The tiny autoencoder's encoder on FSDD test digits: probed from the checkpoint and from a latent dataset
    of the same files, the representations agree; the CLI writes the table, JSON and one plot per pair."""
    fsdd = shared / "data" / "fsdd"
    out = tmp_path / "probe"
    proc = run_in_process("probe", "--run", tiny_run, "--labels", fsdd / "labels.csv", "--where", "split=test",
                          "--label", "digit", "--label", "speaker", "--limit", "60", "--k", "1", "--k", "5", "--folds", "3", "-o", out)
    assert "digit (10 classes, 60 items" in proc.stdout
    res = json.loads((out / "probe.json").read_text())
    assert set(res["labels"]) == {"digit", "speaker"}
    assert set(res["labels"]["digit"]["per_representation"]) == {"enc1", "mel"}
    assert sorted(p.name for p in out.glob("*.png")) == ["lda_digit_enc1.png", "lda_digit_mel.png",
                                                          "lda_speaker_enc1.png", "lda_speaker_mel.png"]
    for entry in res["labels"].values():
        for r in entry["per_representation"].values():
            assert all(0.0 <= a <= 1.0 for a in r["knn"].values())

    items, _ = read_labels(fsdd / "labels.csv", ["digit"], {"split": "test"}, limit=12)
    lst = tmp_path / "files.txt"
    lst.write_text("".join(f"{it.path}\n" for it in items))
    run_in_process("encode", "--run", tiny_run, lst, "-o", tmp_path / "lat", "--no-progress")
    from audiogen.pipeline import load_pipeline
    from audiogen.settings import audio_settings_for

    pipe, _ = load_pipeline(tiny_run)
    from_model = model_representations(pipe, items, audio_settings_for(pipe.encoder, "encoder"), False, 80)[0]
    from_data = dataset_representations(tmp_path / "lat", items, False, 80)[0]
    np.testing.assert_allclose(from_model.matrix(), from_data.matrix(), rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match="not in the latent dataset"):
        dataset_representations(tmp_path / "lat", read_labels(fsdd / "labels.csv", ["digit"], limit=40)[0][-5:],
                                False, 80)


def test_k_larger_than_the_items_is_a_clear_error_and_small_folds_still_vote(tmp_path):
    from audiogen.workflows.probe import Representation, read_outs

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (3, 2)), rng.normal(5, 0.1, (3, 2))])
    y = np.repeat([0, 1], 3)
    # 3 folds of 6 items train on 4: k=5 votes with all 4 (used to crash in the vote)
    assert set(knn_lda_cv(x, y, [1, 5], dims=1, folds=3)) == {1, 5}
    assert knn_leave_one_out(x, y, [5])[5] == 0.0  # 5 others: 2 of its class, 3 of the other; never itself
    items = [Item(tmp_path / f"{i}.wav", {"c": str(c)}) for i, c in enumerate(y)]
    rep = Representation("r", 1, 8000, list(x))
    with pytest.raises(ConfigError, match="k=10 needs more than 10 items, but there are 6"):
        read_outs([rep], items, ["c"], [1, 10], tmp_path / "out", plots=False)


def test_segment_past_the_end_of_the_file_names_the_file():
    z = np.arange(10, dtype=np.float64)[None]
    # used to average no frame (NaN), then blamed the model ("non-finite values, check the model")
    with pytest.raises(ConfigError, match=r"a\.wav: segment start 1\.5 s is not inside the audio \(1\.000 s long\)"):
        time_average(z, 100, 1000, 1000, 1.5, 2.0, path="a.wav")


def test_label_names_never_lead_plots_out_of_the_output(tmp_path):
    """A labels CSV's column names become plot file names: one like '../../x' stays a file name inside -o."""
    from audiogen.workflows.probe import Representation, read_outs

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (4, 2)), rng.normal(5, 0.1, (4, 2))])
    label = "../../../../escaped/x"  # lda_<label>_r.png: "lda_.." then three levels up from out
    items = [Item(tmp_path / f"{i}.wav", {label: str(c)}) for i, c in enumerate(np.repeat([0, 1], 4))]
    out = tmp_path / "a" / "b" / "out"
    read_outs([Representation("r", 1, 8000, list(x))], items, [label], [1], out)
    outside = [p for p in tmp_path.rglob("*.png") if out not in p.parents]
    assert not outside and len(list(out.glob("lda_*.png"))) == 1, (outside, list(out.rglob("*")))
