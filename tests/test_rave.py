"""RAVE exports as encoder/decoder (``encoders.rave``, ``decoders.rave``): every ``shared/models/*.ts`` is read
with torch alone and checked against its JSON sidecar (which the reader never opens), plus tiny scripted fakes
for what the shared models do not cover (other rates and sizes, exact chunked decoding, bad files)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from conftest import run_in_process, shared_dir, write_tone
from torch import nn

from audiogen.contracts import check_decoder, check_encoder
from audiogen.decoders.rave import RaveDecoder
from audiogen.encoders.rave import RaveEncoder
from audiogen.errors import ConfigError
from audiogen.latents.encode import encode_array

torch.set_num_threads(1)
MODELS = sorted(p.name for p in (shared_dir() / "models").glob("*.ts")) or ["(no .ts in shared/models)"]


def _db(x) -> float:
    return 20 * math.log10(float(np.sqrt(np.mean(np.square(x)))) + 1e-12)


def _rms(x: torch.Tensor) -> float:
    return float(x.pow(2).mean().sqrt())


def _read(path: Path) -> torch.Tensor:
    x, _ = sf.read(path, dtype="float32")
    return torch.from_numpy(x)[None, None]


@pytest.fixture(scope="module", params=MODELS)
def model(request, shared):
    path = shared / "models" / request.param
    if not path.is_file():
        pytest.fail(f"no RAVE export (*.ts) in {shared / 'models'}")
    side = json.loads(path.with_name(path.name + ".json").read_text())
    return path, side


@pytest.fixture(scope="module")
def speech(shared) -> list[Path]:
    """The first three files of the LibriSpeech mini train list."""
    ls = shared / "data" / "librispeech-100-mini"
    return [ls / p for p in (ls / "train.txt").read_text().split()[:3]]


# ------------------------------------------------------------------------------------------ real exports
def test_reads_numbers_from_the_model_not_the_sidecar(model, tmp_path):
    path, side = model
    alone = tmp_path / "model.ts"  # a copy without its sidecar: what the reader knows comes from the file
    shutil.copyfile(path, alone)
    enc, dec = RaveEncoder(str(alone)), RaveDecoder(str(alone))
    params = side["nn_tilde_param_buffers"]["encode_params"]
    assert (enc.sample_rate, enc.latent_size, enc.hop) == (side["sampling_rate"], params[2], params[3])
    assert (dec.sample_rate, dec.latent_size, dec.hop) == (enc.sample_rate, enc.latent_size, enc.hop)
    assert enc.rave.full_latent_size == side["full_latent_size"]
    assert enc.pretrained and dec.pretrained and dec.out_channels == 1
    assert enc.rave.streaming == bool(side["streaming"])


def test_contracts(model):
    enc, dec = RaveEncoder(str(model[0])), RaveDecoder(str(model[0]))
    check_encoder(enc)
    check_decoder(dec)
    assert enc.receptive_field and enc.receptive_field > enc.hop and dec.context_frames >= 1


def test_mean_encoding_is_the_noise_free_encode(model, speech):
    path, side = model
    enc = RaveEncoder(str(path))
    if "Variational" in side.get("export", {}).get("class", ""):
        assert enc.encoding_mode == "mean" and enc.rave.mean_available, enc.rave.mean_error
    if enc.encoding_mode != "mean":
        pytest.skip(f"{path.name}: no posterior mean ({enc.rave.mean_error})")
    x = _read(speech[0])[..., : 3 * enc.sample_rate]
    with torch.no_grad():
        z = enc(x)
        assert torch.equal(z, enc(x))  # deterministic
        xp = F.pad(x, (0, z.shape[-1] * enc.hop - x.shape[-1]))
        torch.manual_seed(0)
        draws = torch.stack([enc.rave.module.encode(xp) for _ in range(32)])  # the export's own, sampled
    spread = draws.std(0)
    assert float(spread.mean()) > 1e-3  # encode really samples
    # the average of the samples converges on our mean (t statistic with 31 dof, over every element)
    t = (draws.mean(0) - z).abs() / (spread / math.sqrt(len(draws)) + 1e-6)
    assert float(t.max()) < 6.5 and float(t.mean()) < 1.2, (float(t.max()), float(t.mean()))
    sampler = RaveEncoder(str(path), mode="sample", seed=3)
    with torch.no_grad():
        a, b = sampler(x), sampler(x)
    assert sampler.encoding_mode == "sample" and torch.equal(a, b) and not torch.allclose(a, z)


def test_chunked_equals_whole(model, speech):
    path = str(model[0])
    x = max((_read(p) for p in speech), key=lambda a: a.shape[-1])
    whole, chunks = RaveEncoder(path, chunk_seconds=None), RaveEncoder(path, chunk_seconds=2.0)
    with torch.no_grad():
        z, zc = whole(x), chunks(x)
    assert x.shape[-1] > 3 * chunks.chunk and zc.shape == z.shape == (1, whole.latent_size, math.ceil(x.shape[-1] / whole.hop))
    assert float((z - zc).abs().max()) <= 1e-4 * float(z.abs().max())
    # `audiogen encode` cuts long files itself, with the encoder's receptive_field as margins
    arr = x[0, 0].numpy()
    za = encode_array(whole, lambda s, e: arr[s:e], len(arr), chunk=2 * whole.sample_rate)
    assert np.abs(za - z[0].T.numpy()).max() <= 1e-4 * float(z.abs().max())
    # decoding is random (noise-filled dimensions, noise generator): chunking must add no more difference than
    # another seed does (a chunk misaligned by one frame adds about three times as much)
    with torch.no_grad():
        y0 = RaveDecoder(path, chunk_seconds=None, seed=0)(z)
        y1 = RaveDecoder(path, chunk_seconds=None, seed=1)(z)
        yc = RaveDecoder(path, chunk_seconds=2.0, seed=0)(z)
    assert yc.shape == y0.shape == (1, 1, z.shape[-1] * whole.hop)
    assert _rms(yc - y0) < 1.5 * _rms(y1 - y0), (_rms(yc - y0), _rms(y1 - y0))


def test_round_trip_real_speech(model, speech):
    enc, dec = RaveEncoder(str(model[0])), RaveDecoder(str(model[0]), seed=0)
    for f in speech:
        x = _read(f)
        assert sf.info(f).samplerate == enc.sample_rate
        with torch.no_grad():
            z = enc(x)
            y = dec(z)
            again = dec(z)
        assert z.shape == (1, enc.latent_size, math.ceil(x.shape[-1] / enc.hop))
        assert y.shape == (1, 1, z.shape[-1] * dec.hop) and torch.equal(y, again)  # seeded: reproducible
        assert abs(_db(y[..., : x.shape[-1]].numpy()) - _db(x.numpy())) < 10


def test_cli_encode_decode(model, speech, tmp_path):
    path, side = model
    lat, out = tmp_path / "lat", tmp_path / "dec"
    bind = ["--gin", "pipelines/rave_bridge.gin", "--bind", f"RAVE_MODEL='{path}'"]
    run_in_process("encode", *bind, *speech, "-o", lat, "--no-progress")
    meta = json.loads((lat / "meta.json").read_text())
    assert meta["encoder"]["name"] == "encoders.rave" and meta["num_files"] == 3
    assert meta["sample_rate"] == side["sampling_rate"] and meta["hop"] == meta["encoder_info"]["hop"]
    info = meta["encoder_info"]
    assert info["encoding_mode"] == "mean" and info["model_path"] == str(path) and info["model_sha256"] == side["sha256"]
    run_in_process("decode", lat, "-o", out)
    for f in speech:
        info = sf.info(out / f.with_suffix(".wav").name)
        assert info.samplerate == side["sampling_rate"] and info.frames == sf.info(f).frames
    bad = run_in_process("encode", *bind, "--bind", "audio.sample_rate=22050", speech[0], "-o", tmp_path / "x",
                         check=False)
    assert bad.returncode == 2 and "audio.sample_rate=" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_encode_equals_whole_file_encoding(model, speech, tmp_path):
    """`audiogen encode` cuts files into fixed-size windows with the measured receptive field as margins and batches
    them across files; every file's latents equal encoding it whole, whatever its length."""
    from audiogen.latents.dataset import LatentDataset
    from audiogen.latents.windows import WindowShapes

    path = str(model[0])
    whole = RaveEncoder(path, chunk_seconds=None)
    sr, batch_seconds = whole.sample_rate, 3.0
    shapes = WindowShapes(whole.hop, whole.receptive_field, int(batch_seconds * sr))
    speech_all = np.concatenate([_read(f)[0, 0].numpy() for f in speech])
    lengths = [sr // 5, shapes.sizes[-1] + 1, 2 * sr + 123, shapes.sizes[0], 7 * sr + 5, 21 * sr]
    assert shapes.plan(math.ceil(lengths[0] / whole.hop) * whole.hop) is None  # shorter than a window: whole
    files = []
    for i, n in enumerate(lengths):
        files.append(tmp_path / f"f{i}.wav")
        sf.write(files[-1], speech_all[i * sr: i * sr + n], sr, subtype="FLOAT")
    run_in_process("encode", "--gin", "pipelines/rave_bridge.gin", "--bind", f"RAVE_MODEL='{path}'", *files,
                   "-o", tmp_path / "lat", "--no-progress", "--bind", f"encode.batch_seconds={batch_seconds}",
                   "--bind", "encode.chunk_seconds=5.0")  # the 21 s file is read in blocks
    ds = LatentDataset(tmp_path / "lat")
    for i, f in enumerate(files):
        with torch.inference_mode():
            want = whole(_read(f))[0].T.numpy()
        assert ds.sequence(i).shape == want.shape == (math.ceil(lengths[i] / whole.hop), whole.latent_size)
        np.testing.assert_allclose(ds.sequence(i), want, rtol=0, atol=1e-5, err_msg=f"{lengths[i]} samples")


# ------------------------------------------------------------------------ small scripted exports (no shared)
class CachedConv1d(nn.Module):
    """A causal convolution the way cached_conv streams it: the left padding of each call is the tail of the
    previous call's input (state kept between calls, zero after a reset), so the output lags the input."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, stride=stride)
        self.pad = CachedPadding1d(cin, kernel - stride)

    def forward(self, x):
        return self.conv(self.pad(x))


class CachedPadding1d(nn.Module):
    """Named like cached_conv's state-carrying module (buffer ``pad``), so the reader knows to reset it."""

    def __init__(self, channels: int, size: int):
        super().__init__()
        self.size = size
        self.register_buffer("pad", torch.zeros(1, channels, size))

    def forward(self, x):
        x = torch.cat([self.pad.expand(x.shape[0], -1, -1), x], -1)
        self.pad.copy_(x[:1, :, x.shape[-1] - self.size:])
        return x


class _VariationalEncoder(nn.Module):
    def __init__(self, channels: int, hop: int, full: int, streaming: bool = False):
        super().__init__()
        if streaming:  # cached convolutions inside the encoder, as in RAVE's streaming exports
            self.net = nn.Sequential(CachedConv1d(channels, 8, 9), nn.LeakyReLU(0.2),
                                     CachedConv1d(8, 2 * full, 2 * hop, hop))
            return
        self.net = nn.Sequential(nn.Conv1d(channels, 8, 9, padding=4), nn.LeakyReLU(0.2),
                                 nn.Conv1d(8, 2 * full, 2 * hop, stride=hop, padding=hop // 2))

    def forward(self, x):
        return self.net(x)

    @torch.jit.export
    def reparametrize(self, z):
        mean, scale = z.chunk(2, 1)
        std = F.softplus(scale) + 1e-4
        return mean + torch.randn_like(mean) * std, std.mean()


class FakeRave(nn.Module):
    """What matters of a RAVE export: encode/decode, nn~ params, sr, PCA buffers; raw input, zero-filled decode."""

    def __init__(self, sr=8000, hop=64, latent=4, full=6, channels=1, streaming=False):
        super().__init__()
        torch.manual_seed(0)
        self.sr = sr
        self.input_mode = "raw"
        self.latent_size = latent
        self.full_latent_size = full
        self.encoder = _VariationalEncoder(channels, hop, full, streaming)
        first = CachedConv1d(full, 8, 5) if streaming else nn.Conv1d(full, 8, 5, padding=2)
        self.decoder = nn.Sequential(first, nn.LeakyReLU(0.2), nn.ConvTranspose1d(8, channels, hop, stride=hop))
        self.register_buffer("latent_pca", torch.linalg.qr(torch.randn(full, full))[0])
        self.register_buffer("latent_mean", torch.randn(full) * 0.1)
        self.register_buffer("encode_params", torch.tensor([channels, 1, latent, hop]))
        self.register_buffer("decode_params", torch.tensor([latent, hop, channels, 1]))

    @torch.jit.export
    def encode(self, x):
        z = self.encoder.reparametrize(self.encoder(x))[0]
        z = F.conv1d(z - self.latent_mean.unsqueeze(-1), self.latent_pca.unsqueeze(-1))
        return z[:, : self.latent_size]

    @torch.jit.export
    def decode(self, z):
        z = torch.cat([z, torch.zeros(z.shape[0], self.full_latent_size - z.shape[1], z.shape[-1])], 1)
        z = F.conv1d(z, self.latent_pca.T.unsqueeze(-1)) + self.latent_mean.unsqueeze(-1)
        return torch.tanh(self.decoder(z))

    def forward(self, x):
        return self.decode(self.encode(x))


class PlainRave(nn.Module):
    """A deterministic (non-variational) export: no reparametrize, so no posterior mean to take."""

    def __init__(self):
        super().__init__()
        self.sr = 8000
        self.encoder = nn.Conv1d(1, 4, 32, stride=32)
        self.decoder = nn.ConvTranspose1d(4, 1, 32, stride=32)
        self.register_buffer("encode_params", torch.tensor([1, 1, 4, 32]))
        self.register_buffer("decode_params", torch.tensor([4, 32, 1, 1]))

    @torch.jit.export
    def encode(self, x):
        return self.encoder(x)

    @torch.jit.export
    def decode(self, z):
        return self.decoder(z)

    def forward(self, x):
        return self.decode(self.encode(x))


def _export(module: nn.Module, path: Path) -> str:
    torch.jit.save(torch.jit.script(module), str(path))
    return str(path)


def test_fake_export_numbers_mean_path_and_exact_chunking(tmp_path):
    path = _export(FakeRave(), tmp_path / "fake.ts")
    enc, dec = RaveEncoder(path, chunk_seconds=0.5), RaveDecoder(path, chunk_seconds=0.5)
    assert (enc.sample_rate, enc.hop, enc.latent_size, enc.encoding_mode) == (8000, 64, 4, "mean")
    assert (dec.sample_rate, dec.hop, dec.latent_size) == (8000, 64, 4)
    check_encoder(enc)
    check_decoder(dec)
    x = torch.rand(2, 1, 3 * 8000 + 5) - 0.5
    with torch.no_grad():
        z, zw = enc(x), RaveEncoder(path, chunk_seconds=None)(x)
        y, yw = dec(z), RaveDecoder(path, chunk_seconds=None)(z)
    assert z.shape == (2, 4, math.ceil(x.shape[-1] / 64)) and y.shape == (2, 1, z.shape[-1] * 64)
    assert torch.allclose(z, zw, atol=1e-5) and torch.allclose(y, yw, atol=1e-5)


def test_fake_stereo_export_takes_and_gives_mono(tmp_path):
    path = _export(FakeRave(channels=2, hop=32), tmp_path / "stereo.ts")
    enc, dec = RaveEncoder(path), RaveDecoder(path)
    assert enc.encoding_mode == "mean"
    check_encoder(enc)
    check_decoder(dec)


def test_non_variational_export_falls_back_to_its_encode(tmp_path, caplog):
    path = _export(PlainRave(), tmp_path / "plain.ts")
    with caplog.at_level("WARNING", logger="audiogen"):
        enc = RaveEncoder(path)
    assert enc.encoding_mode == "sample" and "reparametrize" in enc.describe()["mean_unavailable_because"]
    assert enc.describe()["fell_back_to_sampling"] and "posterior mean unavailable" in caplog.text  # loud
    check_encoder(enc)
    with pytest.raises(ConfigError, match="mode='sample'"):
        RaveEncoder(path, mode="mean")


def test_streaming_export_is_reset_between_calls(tmp_path):
    path = _export(FakeRave(streaming=True), tmp_path / "streaming.ts")
    enc, dec = RaveEncoder(path, mode="sample", seed=0), RaveDecoder(path)
    assert enc.rave.streaming and enc.receptive_field is None and dec.context_frames is None
    x = torch.rand(1, 1, 640) - 0.5
    with torch.no_grad():
        assert torch.equal(enc(x), enc(x))


def test_streaming_export_takes_the_posterior_mean(tmp_path):
    """Cached convolutions keep the tail of the last call: the load-time check must not compare a reset `encode`
    with a replay on leftover state (which refused the mean and fell back to unseeded sampling)."""
    path = _export(FakeRave(streaming=True), tmp_path / "streaming.ts")
    enc = RaveEncoder(path, mode="mean")  # refused before the fix ("does not reproduce the export's encode")
    assert enc.encoding_mode == "mean" and enc.describe()["mean_unavailable_because"] is None
    assert RaveEncoder(path).encoding_mode == "mean"  # 'auto' takes it too
    x = torch.rand(1, 1, 8 * 64) - 0.5
    with torch.no_grad():
        a, b = enc(x), enc(x)
        noisy = enc.rave.encode_sample(x)
    assert torch.equal(a, b) and not torch.allclose(a, noisy)


def test_bad_model_files(tmp_path):
    with pytest.raises(ConfigError, match="RAVE_MODEL"):
        RaveEncoder(None)
    with pytest.raises(ConfigError, match="does not exist") as e:
        RaveEncoder(str(tmp_path / "missing.ts"))
    assert "missing.ts" in str(e.value) and "fix: " in str(e.value)
    with pytest.raises(ConfigError, match="not a file"):
        RaveDecoder(str(tmp_path))
    junk = tmp_path / "junk.ts"
    junk.write_bytes(b"not a model at all" * 10)
    with pytest.raises(ConfigError, match="not a TorchScript file") as e:
        RaveEncoder(str(junk))
    assert str(junk) in str(e.value) and "rave export" in str(e.value)
    ckpt = tmp_path / "weights.ckpt"
    torch.save({"state_dict": nn.Linear(2, 2).state_dict()}, ckpt)
    with pytest.raises(ConfigError, match="not a TorchScript file"):
        RaveDecoder(str(ckpt))
    other = _export(nn.Conv1d(1, 1, 3), tmp_path / "conv.ts")
    with pytest.raises(ConfigError, match="not a RAVE export") as e:
        RaveEncoder(other)
    assert all(w in str(e.value) for w in ("encode()", "decode()", "encode_params", "attribute sr", other))
    wav = write_tone(tmp_path / "tone.wav")
    with pytest.raises(ConfigError, match="not a TorchScript file"):
        RaveEncoder(str(wav))
    with pytest.raises(ConfigError, match="mode must be one of"):
        RaveEncoder(_export(PlainRave(), tmp_path / "plain.ts"), mode="median")


def test_cli_takes_the_model_rate(tmp_path):
    """An 8 kHz export: audio.sample_rate follows the model unless set; 16 kHz input is resampled."""
    path = _export(FakeRave(), tmp_path / "fake8k.ts")
    tone = write_tone(tmp_path / "in" / "tone.wav", seconds=0.5, sr=16000)
    run_in_process("encode", "--gin", "pipelines/rave_bridge.gin", "--bind", f"RAVE_MODEL='{path}'", tone,
                   "-o", tmp_path / "lat", "--no-progress")
    meta = json.loads((tmp_path / "lat" / "meta.json").read_text())
    assert meta["sample_rate"] == 8000 and meta["files"][0]["samples"] == 4000 and meta["hop"] == 64
    assert "audio.sample_rate = 8000" in meta["operative_config"]
    bad = run_in_process("encode", "--gin", "pipelines/rave_bridge.gin", "--gin", "data/speech16k.gin", "--bind",
                         f"RAVE_MODEL='{path}'", tone, "-o", tmp_path / "x", check=False)
    assert bad.returncode == 2 and "8000 Hz" in bad.stderr and "audio.sample_rate=8000" in bad.stderr
