"""Packed (padding-free) execution gives the padded forward's logits, through the model's own modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.packing import attention_groups, enable_packing, pack, packed_logits, packing_problem
from inference.padding import PaddedBatch, pad_batch
from inference.precision import prepare_forward
from tests.helpers.models import build_spread_bert

MAX_POSITIONS = 64


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    bert = build_spread_bert(["negative", "positive"], max_position_embeddings=MAX_POSITIONS)
    enable_packing(bert)
    return bert


def _random_ids(lengths: list[int], seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [rng.integers(1000, 30000, size=n).tolist() for n in lengths]


def _padded(model: torch.nn.Module, ids: list[list[int]]) -> torch.Tensor:
    input_ids, mask = pad_batch(ids, 0)
    with torch.inference_mode():
        return model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(mask)).logits


def _packed(model: torch.nn.Module, ids: list[list[int]]) -> torch.Tensor:
    with torch.inference_mode():
        return packed_logits(model, pack(ids))


@pytest.mark.parametrize(
    "lengths",
    [
        list(range(1, MAX_POSITIONS + 1)),  # every length 1..max in one batch
        [MAX_POSITIONS, 3, 1, 7, 2],  # one maximum-length input among short ones
        [MAX_POSITIONS],  # a batch of one
        [5, 5, 5, 5],  # one attention group without a key mask
        [1, 2, 13, 14, 40, 41, 9],
    ],
)
def test_packed_logits_equal_padded_logits_within_fp32_tolerance(model: torch.nn.Module, lengths: list[int]) -> None:
    ids = _random_ids(lengths, seed=len(lengths))
    padded, packed = _padded(model, ids), _packed(model, ids)
    assert packed.shape == padded.shape == (len(ids), 2)
    assert padded.abs().max() > 1  # the spread model's logits differ from text to text
    assert torch.allclose(packed, padded, atol=1e-4, rtol=0), (packed - padded).abs().max()
    with torch.inference_mode():
        alone = torch.cat([model(input_ids=torch.tensor([x])).logits for x in ids])
    assert torch.allclose(packed, alone, atol=1e-4, rtol=0)


def test_the_order_of_inputs_in_a_pack_does_not_change_their_logits(model: torch.nn.Module) -> None:
    ids = _random_ids([30, 2, 17, 64, 9, 9, 1])
    forward = _packed(model, ids)
    backward = _packed(model, ids[::-1])
    assert torch.allclose(forward, backward.flip(0), atol=1e-4, rtol=0)


def test_a_padded_call_on_the_packing_model_is_plain_sdpa(model: torch.nn.Module) -> None:
    plain = build_spread_bert(["negative", "positive"], max_position_embeddings=MAX_POSITIONS)
    ids = _random_ids([4, 20, 11])
    assert torch.allclose(_padded(model, ids), _padded(plain, ids), atol=1e-6, rtol=0)


def test_the_pack_layout() -> None:
    batch = pack([[5, 6, 7], [8], [9, 10]])
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9, 10]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 0, 0, 1]]
    assert batch.starts.tolist() == [0, 3, 4] and batch.cu_seqlens.tolist() == [0, 3, 4, 6]
    assert (batch.size, batch.tokens, batch.max_length) == (3, 6, 3)
    covered = sorted(i for g in batch.groups for i in g.scatter.tolist())
    assert covered == list(range(6))  # every real token's attention output is written exactly once
    with pytest.raises(ValueError, match="at least one token"):
        pack([[1], []])


def test_attention_groups_cover_every_input_and_bound_the_width() -> None:
    lengths = [1, 64, 3, 9, 10, 12, 30, 31, 2, 64, 47]
    groups = attention_groups(lengths, ratio=1.5, slack=8)
    assert sorted(k for g in groups for k in g) == list(range(len(lengths)))
    for g in groups:
        shortest, longest = lengths[g[0]], lengths[g[-1]]
        assert longest <= max(shortest * 1.5, shortest + 8)
    assert len(groups) < len(set(lengths))  # similar lengths share a block


@pytest.mark.parametrize("dtype", ["bf16", "int8"])
def test_reduced_precisions_pack_too(dtype: str) -> None:
    ids = _random_ids([1, 8, 33, 64, 12])
    bert = build_spread_bert(["n", "p"], max_position_embeddings=MAX_POSITIONS)
    forward = prepare_forward(bert, "cpu", dtype, packed=True)  # type: ignore[arg-type]
    input_ids, mask = pad_batch(ids, 0)
    padded = forward(PaddedBatch(torch.from_numpy(input_ids), torch.from_numpy(mask)))
    packed = forward(pack(ids))
    assert packed.dtype == np.float32 and packed.shape == (5, 2) and np.isfinite(packed).all()
    if dtype == "bf16":
        assert (packed.argmax(1) == padded.argmax(1)).all() and np.abs(packed - padded).max() < 0.1
    # int8 quantises activations per batch tensor, so its logits depend on what shares the batch in either
    # layout; how often that changes a label on real data is what its packing_parity record measures.


def test_only_bert_classifiers_are_packed() -> None:
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    assert packing_problem(build_spread_bert(["n", "p"])) is None
    distil = DistilBertForSequenceClassification(DistilBertConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64))
    assert "only BERT encoders are packed" in (packing_problem(distil) or "")
