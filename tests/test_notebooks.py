"""The teaching notebooks run top to bottom in a clean kernel, with small sizes.

Each notebook keeps the numbers its text relies on in a dict ``key_numbers``;
the test appends a cell that prints it as JSON and asserts on the deterministic
ones. The notebooks run as committed (``FULL = False``, solutions on); the
exercise notebooks also run stripped of their solutions, as a teacher hands
them out, and must still run without an error.
"""

import importlib.util
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = os.path.join(ROOT, "notebooks")
NAMES = (
    "01_rnn_and_bptt",
    "02_lstm_and_gru",
    "03_gradient_checking",
    "04_vanishing_and_exploding",
    "05_session_recommendation",
    "06_rnnrec_vs_pytorch",
)
MISSING = [
    name
    for name in ("nbformat", "nbclient", "ipykernel", "matplotlib", "torch", "pandas")
    if importlib.util.find_spec(name) is None
]
pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=f"running the notebooks needs {', '.join(MISSING)} "
    "(pip install -e '.[test]')",
)
PRINT_KEY_NUMBERS = "import json\nprint(json.dumps(key_numbers, default=str))"


def run(notebook):
    """Execute a notebook dict in a fresh kernel; return the key numbers."""
    import nbformat
    from nbclient import NotebookClient

    notebook.cells.append(nbformat.v4.new_code_cell(PRINT_KEY_NUMBERS))
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": NOTEBOOKS}},
    )
    client.execute()
    outputs = notebook.cells[-1].outputs
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    return json.loads(text)


def read(name):
    import nbformat

    return nbformat.read(os.path.join(NOTEBOOKS, f"{name}.ipynb"), as_version=4)


@pytest.fixture(scope="module")
def key_numbers():
    """Run every notebook once; the tests below share the results."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # inherited by the kernels
    return {name: run(read(name)) for name in NAMES}


def test_notebooks_are_committed_with_outputs_and_small_flag():
    for name in NAMES:
        notebook = read(name)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert any(c.outputs for c in code), f"{name} is committed without outputs"
        assert "FULL = False" in code[0].source or name.startswith("06"), name
        errors = [o for c in code for o in c.outputs if o.output_type == "error"]
        assert not errors, f"{name} is committed with an error output"


def test_01_rnn_and_bptt(key_numbers):
    k = key_numbers["01_rnn_and_bptt"]
    assert k["forward_max_diff"] < 1e-14
    assert k["bptt_passed"] is True and k["bptt_max_rel_error"] < 1e-6
    assert k["exercise_1_passed"] is True
    assert k["break_None_passed"] is True
    assert k["break_sign_passed"] is False
    assert k["break_missing-term_passed"] is False
    assert k["train_last_loss"] < 0.1 * k["train_first_loss"]


def test_02_lstm_and_gru(key_numbers):
    k = key_numbers["02_lstm_and_gru"]
    assert all(v < 1e-13 for v in k["torch_agreement"].values())
    assert set(k["torch_agreement"]) == {"rnn", "lstm", "gru"}
    assert k["gru_variant_gap"] > 0.01
    reach = [k["lstm_reach"][b] for b in ("-2.0", "0.0", "1.0", "3.0")]
    assert reach == sorted(reach)  # a larger forget bias reaches further back
    assert k["exercise_2_passed"] is True and k["exercise_3_passed"] is True


def test_03_gradient_checking(key_numbers):
    k = key_numbers["03_gradient_checking"]
    assert 1e-7 <= k["best_step_float64"] <= 1e-3
    assert k["best_error_float64"] < 1e-9
    assert k["best_error_float32"] > 1e-6  # float32 cannot check to 1e-6
    assert k["upstream_ones_passed"] is True
    assert k["upstream_random_passed"] is False
    assert k["kinks"] == 1
    assert k["exercise_4_passed"] is True and k["exercise_4_vs_bptt"] < 1e-6


def test_04_vanishing_and_exploding(key_numbers):
    k = key_numbers["04_vanishing_and_exploding"]
    assert k["flow_rnn_0.5"] < 0.5**30  # bounded by the spectral norm, 0.5 per step
    assert k["flow_lstm_1.0"] > 10 * k["flow_rnn_1.0"]
    assert k["radius_after_set"] == pytest.approx(1.2)
    assert min(k["adding"].values()) < 1 / 6
    assert k["unclipped_max_loss"] > 1e10
    assert k["clipped_final_loss"] < 0.3
    assert 0 < k["share_clipped"] < 1


def test_05_session_recommendation(key_numbers):
    k = key_numbers["05_session_recommendation"]
    results = k["results"]
    assert set(results) == {
        "GRU, cross-entropy",
        "GRU, BPR-max",
        "popularity",
        "session popularity",
        "item-kNN",
        "Markov",
    }
    assert all(r["n"] == k["n_test_predictions"] for r in results.values())
    if k["source"] == "DIGINETICA sample":
        assert k["n_items"] == 1891 and k["n_test_predictions"] == 275
    pop = results["popularity"]["recall@20"]
    assert results["GRU, cross-entropy"]["recall@20"] > pop
    assert results["GRU, BPR-max"]["recall@20"] > pop
    assert k["last_loss"] < k["first_loss"]


def test_06_rnnrec_vs_pytorch(key_numbers):
    k = key_numbers["06_rnnrec_vs_pytorch"]
    results = os.path.join(ROOT, "benchmarks", "results")
    with open(os.path.join(results, "bench_cells.json"), encoding="utf-8") as f:
        cells = json.load(f)
    assert k["bench_rows"] == len(cells["rows"])
    assert "bench_cells.json" in k["files"]
    for name, recall in k["recall@20"].items():
        with open(os.path.join(results, f"{name}.json"), encoding="utf-8") as f:
            assert recall == json.load(f)["recall@20"]


def test_stripped_exercise_notebooks_run_and_report_unsolved():
    from rnnrec.exercises import strip_notebook

    expected = {
        "01_rnn_and_bptt": ["exercise_1_passed"],
        "02_lstm_and_gru": ["exercise_2_passed", "exercise_3_passed"],
        "03_gradient_checking": ["exercise_4_passed"],
    }
    import nbformat

    for name, flags in expected.items():
        stripped, n_blocks = strip_notebook(dict(read(name)))
        assert n_blocks == len(flags)
        text = json.dumps(stripped)
        assert "if SOLUTIONS:" not in text and "SOLUTIONS = False" in text
        k = run(nbformat.from_dict(stripped))
        for flag in flags:
            assert k[flag] is False, (name, flag)
