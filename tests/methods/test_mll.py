"""MLL (methods/mll/selector.py): every equation on a hand-computed toy graph (3 nodes, 2 models,
2 classes), the compact Eq. 5 against the brute-force one, the selector through the harness,
and the target captions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.features.embedders import Embedder
from benchmark.features.model_labels import (
    KIND,
    decode_texts,
    encode_texts,
    mock_labels,
    split_captions,
    target_captions,
)
from benchmark.features.store import FeaturePackError, Record
from methods.mll import selector as mll
from methods.mll.selector import (
    MLL,
    class_embeddings,
    class_scores,
    node_precision,
    reuse_metric,
    task_score,
    transfer_matrix,
)

S2 = np.sqrt(2.0)

# -- the toy graph ---------------------------------------------------------------------------
# Text-embedder side: node captions g_v and class embeddings e_y (unit rows).
NODE_EMB = np.eye(3)  # g_0, g_1, g_2
CLASS_EMB = np.array([[0.6, 0.8, 0.0], [0.0, 0.6, 0.8]])  # e_0, e_1
# a_{y,v} = 100 <e_y, g_v>:  a_0 = (60, 80, 0),  a_1 = (0, 60, 80)

# Model side (2-d towers). Node v holds the image rows node_images[offsets[v]:offsets[v+1]].
IMAGES = np.array([
    [1.0, 0.1], [0.2, 1.0],  # node 0
    [0.0, 1.0], [0.1, 1.0], [1.0, 0.2],  # node 1
    [-1.0, -0.9],  # node 2
])  # fmt: skip
OFFSETS = np.array([0, 2, 5, 6])
ROWS = np.arange(6)
TEXT_A = np.array([[1.0, 0.0], [0.0, 1.0], [-1 / S2, -1 / S2]])  # t_A(0), t_A(1), t_A(2)
TEXT_B = TEXT_A[[1, 0, 2]]  # model B swaps the captions of nodes 0 and 1


def test_class_embedding_is_the_renormalised_mean_of_caption_embeddings():
    captions = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])  # class 0: rows 0-1; class 1: 2
    e = class_embeddings(captions, [2, 1])
    np.testing.assert_allclose(e, [[1 / S2, 1 / S2, 0], [0, 0, 1]])


def test_transfer_matrix_keeps_the_top_k_similarities_per_class():
    z, selected = transfer_matrix(CLASS_EMB, NODE_EMB, k=2)
    # N_2(y_0) = {1 (80), 0 (60)};  N_2(y_1) = {2 (80), 1 (60)}
    np.testing.assert_allclose(z, [[60, 0], [80, 60], [0, 80]])
    assert selected.tolist() == [0, 1, 2]
    z1, selected1 = transfer_matrix(CLASS_EMB, NODE_EMB, k=1)
    np.testing.assert_allclose(z1, [[0, 0], [80, 0], [0, 80]])
    assert selected1.tolist() == [1, 2]


def test_node_precision_on_the_toy_graph():
    # Eq. 5 over V_s = {0, 1, 2}; argmax_u <x, t(u)> by hand:
    #   A: node 0: (1,.1)->0 yes, (.2,1)->1 no                  p = 1/2
    #      node 1: (0,1)->1, (.1,1)->1 yes, (1,.2)->0 no         p = 2/3
    #      node 2: (-1,-.9)->2 (1.9/sqrt2 > -0.9, -1)            p = 1
    #   B (captions 0 and 1 swapped): node 0: (1,.1)->1 no, (.2,1)->0 yes   p = 1/2
    #      node 1: only (1,.2)->1 is right                                  p = 1/3
    p_a = node_precision(IMAGES, TEXT_A, OFFSETS, ROWS, [0, 1, 2])
    p_b = node_precision(IMAGES, TEXT_B, OFFSETS, ROWS, [0, 1, 2])
    np.testing.assert_allclose(p_a, [1 / 2, 2 / 3, 1])
    np.testing.assert_allclose(p_b, [1 / 2, 1 / 3, 1])


def test_node_precision_is_restricted_to_the_selected_nodes():
    # V_s = {1, 2}: node 0's caption no longer competes, so (1,.2) of node 1 now goes to node 1
    # for A (0.2 > -1.2/sqrt2); for B, node 1's caption is (1,0): (0,1) scores 0 vs -1/sqrt2
    # -> node 1, (.1,1) scores .1 vs -1.1/sqrt2 -> node 1, (1,.2) -> node 1.
    np.testing.assert_allclose(node_precision(IMAGES, TEXT_A, OFFSETS, ROWS, [1, 2]), [1, 1])
    np.testing.assert_allclose(node_precision(IMAGES, TEXT_B, OFFSETS, ROWS, [1, 2]), [1, 1])


def test_class_scores_reuse_metric_and_task_score_on_the_toy_graph():
    z, selected = transfer_matrix(CLASS_EMB, NODE_EMB, k=2)
    p_a = node_precision(IMAGES, TEXT_A, OFFSETS, ROWS, selected)
    p_b = node_precision(IMAGES, TEXT_B, OFFSETS, ROWS, selected)
    pa_y = class_scores(p_a, z[selected])
    pb_y = class_scores(p_b, z[selected])
    np.testing.assert_allclose(pa_y, [1 / 2 * 60 + 2 / 3 * 80, 2 / 3 * 60 + 1 * 80])
    np.testing.assert_allclose(pb_y, [1 / 2 * 60 + 1 / 3 * 80, 1 / 3 * 60 + 1 * 80])
    alpha = 0.7
    ra = reuse_metric(pa_y, alpha)
    np.testing.assert_allclose(ra, [alpha * pa_y[0] + (1 - alpha) * (pa_y[0] + pa_y[1]) / 2,
                                    alpha * pa_y[1] + (1 - alpha) * (pa_y[0] + pa_y[1]) / 2])
    assert task_score(ra) == pytest.approx((pa_y[0] + pa_y[1]) / 2)
    assert task_score(reuse_metric(pb_y, alpha)) == pytest.approx((pb_y[0] + pb_y[1]) / 2)
    assert task_score(ra) > task_score(reuse_metric(pb_y, alpha))  # A ranks above B


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.7, 1.0])
def test_task_score_is_the_mean_class_score_for_every_alpha(alpha):
    p = np.array([0.2, 1.5, 0.7, 3.0])
    assert task_score(reuse_metric(p, alpha)) == pytest.approx(p.mean())
    # MLL's code averages the *other* classes in the second term: same task score
    others = alpha * p + (1 - alpha) * (p.sum() - p) / (len(p) - 1)
    assert others.mean() == pytest.approx(p.mean())


def test_ties_go_to_the_lower_node_index():
    # top-k: classes equally similar to nodes 0 and 1 -> node 0 first
    z, selected = transfer_matrix(np.array([[1.0, 0.0]]), np.full((3, 2), 1 / S2), k=1)
    assert selected.tolist() == [0]
    # Eq. 5 argmax: an image equally close to the captions of nodes 0 and 1 counts for node 0
    text = np.array([[1.0, 0.0], [1.0, 0.0]])
    p = node_precision(np.array([[1.0, 0.0], [1.0, 0.0]]), text, np.array([0, 1, 2]),
                       np.array([0, 1]), [0, 1])
    np.testing.assert_allclose(p, [1, 0])


def test_k_larger_than_the_graph_and_nodes_without_images():
    z, selected = transfer_matrix(CLASS_EMB, NODE_EMB, k=10, eligible=[True, False, True])
    assert selected.tolist() == [0, 2]  # node 1 holds no image: never chosen
    assert z[1].tolist() == [0, 0]
    np.testing.assert_allclose(z[[0, 2]], [[60, 0], [0, 80]])
    with pytest.raises(ValueError, match="no node holds an image"):
        transfer_matrix(CLASS_EMB, NODE_EMB, k=1, eligible=[False] * 3)
    with pytest.raises(ValueError, match="without images"):
        node_precision(IMAGES, TEXT_A, np.array([0, 2, 2, 6]), ROWS, [1])


def brute_force_precision(image, text, offsets, rows, selected):
    """Eq. 5 from the full label S_m = image @ text.T (every image x every caption)."""
    s_full = np.asarray(image, np.float64) @ np.asarray(text, np.float64).T
    out = []
    for v in selected:
        own = rows[offsets[v]:offsets[v + 1]]
        restricted = s_full[np.ix_(own, selected)]
        out.append(np.mean(np.asarray(selected)[restricted.argmax(axis=1)] == v))
    return np.array(out)


@pytest.mark.parametrize("seed", range(5))
def test_compact_node_precision_equals_the_brute_force_label(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    n_nodes, n_images, dim = 40, 150, 16
    text = rng.normal(size=(n_nodes, dim)).astype(np.float16)
    image = rng.normal(size=(n_images, dim)).astype(np.float16)
    counts = rng.integers(1, 9, size=n_nodes)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    rows = rng.integers(0, n_images, size=offsets[-1])  # nodes share images, as in the plan
    selected = np.sort(rng.choice(n_nodes, size=int(rng.integers(2, n_nodes)), replace=False))
    expected = brute_force_precision(image, text, offsets, rows, selected)
    np.testing.assert_array_equal(node_precision(image, text, offsets, rows, selected), expected)
    monkeypatch.setattr(mll, "CHUNK_ROWS", 7)  # chunking does not change the result
    np.testing.assert_array_equal(node_precision(image, text, offsets, rows, selected), expected)


# -- target captions -------------------------------------------------------------------------
def test_published_captions_are_split_one_per_line(data, catalog):
    names, captions, source = target_captions(data, catalog.info("cifar100"))
    assert source == "mll-published" and len(names) == 100 and names[0] == "apple"
    tiger = captions[names.index("tiger")]  # published as one string of 10 numbered lines
    assert len(tiger) == 10 and tiger[0].startswith("The photograph of a tiger")
    assert all(len(c) == 10 for c in captions)
    assert split_captions(["1. a\n\n2) b", " 10. c "]) == ["a", "b", "c"]


def test_targets_without_published_captions_use_templates(data, catalog):
    info = catalog.info("svhn")
    names, captions, source = target_captions(data, info)
    assert source == "templates" and names == info.classnames
    assert captions[0] == tuple(info.prompts(info.classnames[0]))


def test_texts_round_trip_through_uint8_arrays():
    texts = ("dog which is a canine", "café which is ünïcode", "")
    assert decode_texts(encode_texts(texts)) == texts
    assert decode_texts(encode_texts([])) == ()
    with pytest.raises(ValueError, match="newlines"):
        encode_texts(["a\nb"])


# -- the selector ----------------------------------------------------------------------------
class ToyEmbedder(Embedder):
    """A text embedder with known outputs: the toy graph's node and class embeddings."""

    name = "toy"
    dim = 3
    batch_size = 16
    identity = "toy-embedder-for-tests dim=3 l2"
    table = {"node 0": NODE_EMB[0], "node 1": NODE_EMB[1], "node 2": NODE_EMB[2],
             "cap 0": CLASS_EMB[0], "cap 1": CLASS_EMB[1]}

    def _embed_batch(self, texts):
        return np.asarray([self.table[t] for t in texts], dtype=np.float32)


def toy_records(dataset="toy"):
    arrays = {"node_ids": np.asarray(["n0", "n1", "n2"]), "node_offsets": OFFSETS,
              "node_images": ROWS, "sample_offsets": np.array([0, 6]), "image": IMAGES}
    meta = {"node_captions": ("node 0", "node 1", "node 2"), "plan_digest": "p",
            "class_names": ("y0", "y1"), "class_captions": (("cap 0",), ("cap 1",))}
    return {
        m: Record.make(KIND, m, dataset, {**arrays, "text": t}, meta)
        for m, t in (("A:x", TEXT_A), ("B:x", TEXT_B))
    }


class _Target:
    def __init__(self, records, dataset="toy"):
        from benchmark.core.views import FeatureView
        from benchmark.data.catalog import DatasetInfo

        self.dataset = DatasetInfo(dataset, dataset, "d", "t", ("y0", "y1"), ("{c}",))
        self.candidates = tuple(records)
        recs = {(m, dataset): r for m, r in records.items()}
        self._view = FeatureView(KIND, frozenset([dataset]), recs)

    def feature(self, kind):
        assert kind == KIND
        return self._view


def test_selector_scores_are_the_hand_computed_task_scores():
    sel = MLL(k=2, embedder=ToyEmbedder()).fit(None)
    scores = sel.score(_Target(toy_records()))
    pa = [1 / 2 * 60 + 2 / 3 * 80, 2 / 3 * 60 + 1 * 80]
    pb = [1 / 2 * 60 + 1 / 3 * 80, 1 / 3 * 60 + 1 * 80]
    pd.testing.assert_series_equal(scores, pd.Series({"A:x": np.mean(pa), "B:x": np.mean(pb)}))


def test_selector_refuses_labels_of_different_image_plans():
    records = toy_records()
    b = records["B:x"]
    records["B:x"] = Record.make(KIND, b.model, b.dataset, b.arrays, {**b.meta,
                                                                      "plan_digest": "other"})
    with pytest.raises(FeaturePackError, match="different graphs or image plans"):
        MLL(embedder=ToyEmbedder()).fit(None).score(_Target(records))


@pytest.mark.parametrize("params", [{"k": 0}, {"k": 2.5}, {"alpha": 1.5}, {"alpha": True}])
def test_bad_parameters_are_refused_at_fit(params):
    sel = MLL(**params)  # __init__ stores only
    with pytest.raises(ValueError):
        sel.fit(None)


def test_mock_labels_have_the_real_structure():
    from benchmark.features.model_labels import check_arrays

    arrays, meta = mock_labels(np.random.default_rng(0), dim=6)
    check_arrays(arrays, "mock")
    assert len(meta["node_captions"]) == len(arrays["node_ids"])


def test_conformance_check_passes():
    from benchmark.core.check import check_selector

    failures = [r for r in check_selector("mll") if not r.passed]
    assert not failures, failures


def test_run_without_packs_fails_fast_with_the_extract_command(tmp_path, capsys):
    from benchmark.cli import main

    argv = ["run", "--methods", "mll,inb", "--protocol", "mll", "--seeds", "1",
            "--features-dir", str(tmp_path / "features")]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "mll needs features" in err
    assert "python -m benchmark extract all --protocol mll --kinds model-labels" in err
    assert not (tmp_path / "a").exists()
    assert main([*argv, "--out", str(tmp_path / "a"), "--list-missing"]) == 2
    assert "python -m benchmark extract model-labels --models RN50:openai" in \
        capsys.readouterr().out
    assert main([*argv, "--out", str(tmp_path / "b"), "--skip-unavailable", "--no-progress"]) == 0
    scores = pd.read_csv(tmp_path / "b" / "scores.csv")
    assert set(scores["method"]) == {"inb"}
