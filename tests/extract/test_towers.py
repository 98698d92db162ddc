"""BLIP and BEiT-3 retrieval towers on tiny random configs (no weights, no network).

Block discovery, single-pass conductance against captum's LayerConductance block by block, the
open_clip interface the extract commands use, SWAB's tokenisation, and the one-line error
without weights. BEiT-3's backbone is checked against torchscale's BEiT3 when importable.
"""

from __future__ import annotations

import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("captum")
transformers = pytest.importorskip(
    "transformers", reason="BLIP needs transformers (pip install 'vlmbench[towers]')")

from benchmark.extract import towers  # noqa: E402
from benchmark.extract.blocks import find_blocks  # noqa: E402
from benchmark.extract.conductance import (  # noqa: E402
    conductance_summary,
    reference_conductance_captum,
)

pytestmark = pytest.mark.torch

TINY_BEIT3 = towers.Beit3Config(image_size=32, patch_size=8, dim=32, heads=2, layers=3,
                                vocab_size=80, max_positions=70)


def tiny_blip(dtype=torch.float32) -> towers.BlipTowers:
    from transformers import BlipConfig, BlipForImageTextRetrieval

    torch.manual_seed(0)
    cfg = BlipConfig(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                           num_attention_heads=2, image_size=48, patch_size=8,
                           initializer_range=0.05),  # transformers' default 1e-10: all ~0
        text_config=dict(vocab_size=64, hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, encoder_hidden_size=32,
                         max_position_embeddings=40, bos_token_id=1, sep_token_id=2,
                         pad_token_id=0),
        image_text_hidden_size=16)
    blip = BlipForImageTextRetrieval(cfg)
    towers.resize_position_embedding(blip, 32)  # as SWAB: run at a lower resolution
    with torch.no_grad():  # zero biases and embeddings would make F constant along the path
        for name, p in blip.vision_model.named_parameters():
            if name.endswith("bias") or "embedding" in name:
                p.normal_(0.0, 0.1)
    return towers.BlipTowers(blip).to(dtype).eval()


def tiny_beit3(dtype=torch.float32) -> towers.Beit3Retrieval:
    torch.manual_seed(0)
    model = towers.Beit3Retrieval(TINY_BEIT3)
    with torch.no_grad():  # random LayerNorm affine parameters: something to attribute
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("ln.A.bias") or name.endswith("ln.B.bias"):
                p.normal_(1.0 if name.endswith("weight") else 0.0, 0.1)
    return model.to(dtype).eval()


def _images(n, dtype, seed=1):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _errors(ours, ref):
    abs_err = float(np.abs(ours - ref).max())
    return abs_err, abs_err / float(np.abs(ref).max())


FAMILIES = {"blip": tiny_blip, "beit3": tiny_beit3}


def test_block_discovery() -> None:
    blip, beit3 = tiny_blip(), tiny_beit3()
    names = [n for n, _ in find_blocks(blip.visual)]
    assert names == [f"encoder.layers.{i}" for i in range(3)]
    assert all(blip.visual.get_submodule(n) is m for n, m in find_blocks(blip.visual))
    names = [n for n, _ in find_blocks(beit3.visual)]
    assert names == [f"encoder.layers.{i}" for i in range(3)]
    assert [m for _, m in find_blocks(beit3.visual)] == list(beit3.beit3.encoder.layers)


@pytest.mark.parametrize("family", FAMILIES)
def test_float64_single_pass_equals_captum(family: str) -> None:
    model = FAMILIES[family](torch.float64)
    blocks = find_blocks(model.visual)
    x = _images(2, torch.float64)
    ours = conductance_summary(model, x, blocks, n_steps=8, internal_batch_size=5)
    ref = reference_conductance_captum(model, x, blocks, n_steps=8)
    for a, b in ((ours.mean_abs, ref.mean_abs), (ours.total, ref.total)):
        abs_err, rel_err = _errors(a, b)
        print(f"{family} float64 vs captum: max abs {abs_err:.3g}, rel {rel_err:.3g}")
        assert rel_err < 1e-10
    assert np.all(ours.mean_abs > 0) and ours.mean_abs.shape == (2, 3)


@pytest.mark.parametrize("family", FAMILIES)
def test_float32_single_pass_equals_captum(family: str) -> None:
    model = FAMILIES[family](torch.float32)
    blocks = find_blocks(model.visual)
    x = _images(2, torch.float32)
    ours = conductance_summary(model, x, blocks, n_steps=16)
    ref = reference_conductance_captum(model, x, blocks, n_steps=16)
    abs_err, rel_err = _errors(ours.mean_abs, ref.mean_abs)
    print(f"{family} float32 vs captum: max abs {abs_err:.3g}, rel {rel_err:.3g}")
    assert rel_err < 1e-4
    # completeness: the signed totals add up to F(x) - F(0) up to the O(1/n) quadrature gap
    gap = np.abs(ours.completeness_gap()).max() / np.abs(ours.objective_delta).max()
    assert gap < 0.5


def _spm(tmp_path) -> str:
    sentencepiece = pytest.importorskip(
        "sentencepiece", reason="BEiT-3's tokenizer needs sentencepiece ('vlmbench[towers]')")
    words = ["a photo of a dog", "a photo of a cat", "a blurry photo of the car",
             "an image of a bird", "a drawing of many small flowers"] * 20
    buf = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(sentence_iterator=iter(words), model_writer=buf,
                                             vocab_size=28, minloglevel=2)
    path = tmp_path / "beit3.spm"
    path.write_bytes(buf.getvalue())
    return str(path)


def test_beit3_tokenizer_follows_xlmr_ids_and_swab_padding(tmp_path) -> None:
    tok = towers.Beit3Tokenizer(_spm(tmp_path), max_length=20)
    t = tok(["a photo of a dog", "a drawing of many small flowers " * 4])
    ids, mask = t["input_ids"], t["padding_mask"]
    assert ids.shape == mask.shape == (2, 20)
    assert ids[0, 0] == 0 and 2 in ids[0].tolist()  # <s> ... </s>
    n = int((mask[0] == 0).sum())
    assert ids[0, n - 1] == 2 and (ids[0, n:] == 1).all()  # </s>, then <pad>
    assert (mask[1] == 0).sum() == 18  # cut to max_length - 2 ids, as SWAB
    sp_ids = tok.sp.encode("a photo of a dog")
    assert ids[0, 1:n - 1].tolist() == [i + 1 for i in sp_ids]  # fairseq offset


def tok_path(tmp_path) -> str:
    return str(tmp_path / "beit3.spm")


def test_beit3_text_and_image_embeddings(tmp_path) -> None:
    from benchmark.extract.text_features import encode_texts
    from benchmark.extract.zeroshot import zero_shot_classifier

    model = towers.Beit3Retrieval(towers.Beit3Config(
        image_size=32, patch_size=8, dim=32, heads=2, layers=2, vocab_size=64,
        max_positions=70)).eval()
    tok = towers.Beit3Tokenizer(_spm(tmp_path))
    emb = encode_texts(model, tok, ["a photo of a dog", "a photo of a cat"])
    assert emb.shape == (2, 32) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    # padding does not change a text's embedding (masked keys, zeroed pad states)
    longer = towers.Beit3Tokenizer(tok_path(tmp_path), max_length=20)
    assert np.allclose(encode_texts(model, longer, ["a photo of a dog"])[0], emb[0], atol=1e-5)
    w = zero_shot_classifier(model, tok, ["dog", "cat"], ["a photo of a {c}."])
    assert w.shape == (2, 32)
    with torch.no_grad():
        img = model.encode_image(_images(2, torch.float32))
        unit = model.encode_image(_images(2, torch.float32), normalize=True)
    assert img.shape == (2, 32) and torch.allclose(unit, torch.nn.functional.normalize(img))


def test_blip_text_and_image_embeddings(tmp_path) -> None:
    from transformers import BertTokenizer

    from benchmark.extract.text_features import encode_texts

    vocab = ["[PAD]", "[unused]", "[SEP]", "[CLS]", "[UNK]", "[MASK]", "a", "photo", "of",
             "dog", "cat", "the", "."]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = towers.BlipTokenizer(BertTokenizer(str(tmp_path / "vocab.txt")), max_length=10)
    batch = tok(["a photo of a dog.", "the cat"])
    assert batch["input_ids"].shape == (2, 10) and batch["input_ids"][0, 0] == 3  # [CLS]
    model = tiny_blip()
    emb = encode_texts(model, tok, ["a photo of a dog.", "the cat"])
    assert emb.shape == (2, 16)
    with torch.no_grad():
        assert model.encode_image(_images(3, torch.float32)).shape == (3, 16)


def test_blip_position_embedding_resize_is_bicubic_on_the_grid() -> None:
    model = tiny_blip()
    pos = model.blip.vision_model.embeddings.position_embedding
    assert pos.shape == (1, 1 + 16, 32)  # 48 px / 8 -> 6x6 grid resized to 4x4, + [CLS]
    assert model.blip.config.vision_config.image_size == 32


def test_preprocess_is_swabs() -> None:
    from PIL import Image

    spec = towers.SPECS["BEIT3:retrieval_base_coco"]
    x = towers.preprocess_for(spec)(Image.new("RGB", (50, 70), (255, 0, 128)))
    assert x.shape == (3, 384, 384)
    assert torch.allclose(x[0], torch.ones(384, 384))  # (1 - 0.5) / 0.5: inception mean/std
    spec = towers.SPECS["BLIP:retrieval_large_f30k"]
    assert towers.preprocess_for(spec)(Image.new("RGB", (50, 70))).shape == (3, 224, 224)


def test_specs_cover_the_non_open_clip_zoo() -> None:
    from benchmark.data.zoo import NON_OPENCLIP, TOWER_MODELS

    assert set(towers.SPECS) == set(NON_OPENCLIP) == set(TOWER_MODELS)


def test_without_weights_one_line_error_naming_model_and_place(tmp_path, monkeypatch) -> None:
    from benchmark.extract.models import WeightsUnavailableError, load_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VLMBENCH_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(WeightsUnavailableError) as err:
        load_model("BLIP:retrieval_base_coco", cache_dir=str(tmp_path / "hf"))
    msg = str(err.value)
    assert "\n" not in msg and "BLIP:retrieval_base_coco" in msg
    assert "Salesforce/blip-itm-base-coco" in msg
    pytest.importorskip("sentencepiece")
    with pytest.raises(WeightsUnavailableError) as err:
        load_model("BEIT3:retrieval_large_f30k", cache_dir=str(tmp_path / "w"))
    msg = str(err.value)
    assert "\n" not in msg and "BEIT3:retrieval_large_f30k" in msg
    assert "beit3_large_patch16_384_f30k_retrieval.pth" in msg and str(tmp_path / "w") in msg


def test_beit3_checkpoint_round_trip(tmp_path) -> None:
    model = tiny_beit3()
    torch.save({"model": model.state_dict()}, tmp_path / "ckpt.pth")
    other = towers.Beit3Retrieval(TINY_BEIT3)
    towers.load_beit3_checkpoint(other, tmp_path / "ckpt.pth")
    x = _images(2, torch.float32)
    with torch.no_grad():
        assert torch.equal(model.encode_image(x), other.eval().encode_image(x))


def test_beit3_backbone_equals_torchscale() -> None:
    """Our multiway backbone and torchscale's BEiT3 give the same states on the same weights."""
    try:
        from torchscale.architecture.config import EncoderConfig
        from torchscale.model.BEiT3 import BEiT3
    except ImportError as err:
        pytest.skip(f"torchscale not importable ({err}); pip install --no-deps torchscale "
                    f"fairscale==0.4.0")
    c = TINY_BEIT3
    args = EncoderConfig(img_size=c.image_size, patch_size=c.patch_size, vocab_size=c.vocab_size,
                         multiway=True, layernorm_embedding=False, normalize_output=True,
                         no_output_layer=True, encoder_embed_dim=c.dim,
                         encoder_attention_heads=c.heads, encoder_ffn_embed_dim=4 * c.dim,
                         encoder_layers=c.layers, max_source_positions=c.max_positions)
    ref = BEiT3(args).double().eval()
    ours = tiny_beit3(torch.float64).beit3
    missing, unexpected = ref.load_state_dict(ours.state_dict(), strict=False)
    assert not unexpected and all("relative_position" in k for k in missing)
    x = _images(2, torch.float64)
    text = torch.randint(4, c.vocab_size, (2, 9))
    mask = torch.zeros(2, 9, dtype=torch.bool)
    mask[1, 6:] = True
    with torch.no_grad():
        a = ref(visual_tokens=x)["encoder_out"]
        b = ours(image=x)
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-10)
        a = ref(textual_tokens=text, text_padding_position=mask)["encoder_out"]
        b = ours(text=text, padding_mask=mask)
        assert torch.allclose(a[:, 0], b[:, 0], rtol=1e-9, atol=1e-10)
