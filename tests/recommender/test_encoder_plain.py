"""The plain-torch encoder and batching give PyG's numbers, and inference imports no PyG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from rec_fixtures import MEDN_FAST

from graphrec.dataset.samples import RecDataset
from graphrec.recommender.encoder import HeteroGraphEncoder, PlainHeteroGraphEncoder, collate
from graphrec.recommender.medn import MEDNRegressor

_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "models" / "tiny_convnet.onnx"


def test_collate_matches_pyg_batch(rec_dataset: RecDataset) -> None:
    from torch_geometric.data import Batch

    ref = Batch.from_data_list([h.to_hetero_data() for h in rec_dataset.hetero])
    got = collate(rec_dataset.hetero)
    assert got.num_graphs == ref.num_graphs == len(rec_dataset)  # type: ignore[attr-defined]
    for t in ("op", "act", "weight"):
        assert torch.equal(got[t].x, ref[t].x)
        assert torch.equal(got[t].batch, ref[t].batch)
    assert torch.equal(got["op"].op_type, ref["op"].op_type)
    assert set(got.edge_types) == set(ref.edge_types)
    for et in ref.edge_types:
        assert torch.equal(got[et].edge_index, ref[et].edge_index)


def test_plain_encoder_equals_pyg_encoder(rec_dataset: RecDataset) -> None:
    from torch_geometric.data import Batch

    torch.manual_seed(0)
    pyg = HeteroGraphEncoder(hidden=8, out_dim=5, layers=2).eval()
    plain = PlainHeteroGraphEncoder(hidden=8, out_dim=5, layers=2).eval()
    assert list(plain.state_dict()) == list(pyg.state_dict())
    plain.load_state_dict(pyg.state_dict())
    with torch.no_grad():
        ref = pyg(Batch.from_data_list([h.to_hetero_data() for h in rec_dataset.hetero]))
        assert torch.equal(plain(collate(rec_dataset.hetero)), ref)
        assert torch.equal(pyg(collate(rec_dataset.hetero)), ref)
        one = plain(collate(rec_dataset.hetero[:1]))
    assert torch.allclose(one, ref[:1], atol=1e-6)


def test_loaded_medn_predicts_what_the_fitted_one_did(rec_dataset: RecDataset) -> None:
    torch.set_num_threads(1)
    fitted = MEDNRegressor(**MEDN_FAST, seed=1).fit(rec_dataset)
    loaded = MEDNRegressor.from_state(*fitted.state())
    assert isinstance(loaded.net_.encoder, PlainHeteroGraphEncoder)
    a, b = fitted.predict(rec_dataset), loaded.predict(rec_dataset)
    np.testing.assert_array_equal(a.log_latency_ms, b.log_latency_ms)
    np.testing.assert_array_equal(a.p_deployable, b.p_deployable)
    np.testing.assert_array_equal(a.embedding, b.embedding)


def test_recommend_imports_no_pyg() -> None:
    code = (
        "import sys, warnings, graphrec\n"
        "warnings.simplefilter('ignore')\n"
        f"rec = graphrec.recommend({str(_EXAMPLE)!r}, 'auto')\n"
        "print(rec.best.candidate_id)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch_geometric'))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[-1] == "[]"
