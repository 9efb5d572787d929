import numpy as np
import pytest

from indexer.text.ranks import desc_order

pytestmark = pytest.mark.backend_free  # never opens an index


def test_desc_order_is_the_stable_descending_argsort():
    rng = np.random.default_rng(7)
    for _ in range(100):
        x = rng.normal(size=int(rng.integers(1, 2000))).astype(np.float32)
        x[rng.integers(0, len(x), len(x) // 3)] = x[0]  # many ties
        x[rng.integers(0, len(x), 3)] = 0.0
        x[rng.integers(0, len(x), 3)] = -0.0  # equal to +0.0, so ordered by position
        x[rng.integers(0, len(x), 2)] = np.inf
        x[rng.integers(0, len(x), 2)] = -np.inf
        np.testing.assert_array_equal(desc_order(x), np.argsort(-x, kind="stable"))
    assert desc_order(np.zeros(0, np.float32)).shape == (0,)

