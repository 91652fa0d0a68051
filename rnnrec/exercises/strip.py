"""Strip the worked solutions from the teaching notebooks, for a teacher.

The notebooks hold each solution in a block that starts with the line
``if SOLUTIONS:`` inside the student's function, and set the switch
``SOLUTIONS = True`` in their first code cell::

    def my_step_backward(dh_t, x_t, h_prev, h_t, W_ih, W_hh):
        if SOLUTIONS:  # the worked solution
            ...
        raise NotImplementedError("exercise 1: write the step backward")

Stripping removes every such block (the ``if`` line and the lines indented
under it), sets the switch to ``SOLUTIONS = False`` and clears every output,
which would otherwise show the solutions' results. Command::

    python -m rnnrec.exercises strip notebooks/0[123]_*.ipynb --out-dir student

Notebooks are read and written as JSON (nbformat 4), so nothing beyond the
standard library is needed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

BLOCK_START = re.compile(r"^(?P<indent>[ \t]*)if SOLUTIONS:")
SWITCH = re.compile(r"^SOLUTIONS = True\b", re.MULTILINE)


def strip_source(source):
    """Remove the ``if SOLUTIONS:`` blocks from one cell's source.

    Parameters
    ----------
    source : str
        The cell's code.

    Returns
    -------
    text : str
        The code without the blocks, and with ``SOLUTIONS = True`` turned into
        ``SOLUTIONS = False``.
    n_blocks : int
        Blocks removed.
    """
    lines = source.splitlines(keepends=True)
    kept, n_blocks, block_indent = [], 0, None
    for line in lines:
        if block_indent is not None:
            stripped = line.strip()
            indent = len(line) - len(line.lstrip(" \t"))
            if not stripped or indent > block_indent:
                continue  # still inside the block
            block_indent = None
        match = BLOCK_START.match(line)
        if match:
            block_indent = len(match.group("indent"))
            n_blocks += 1
            continue
        kept.append(line)
    text = SWITCH.sub("SOLUTIONS = False", "".join(kept))
    return text, n_blocks


def strip_notebook(notebook):
    """Strip a notebook given as its JSON dict; return the copy and the count.

    Parameters
    ----------
    notebook : dict
        An nbformat-4 notebook as ``json.load`` reads it.

    Returns
    -------
    stripped : dict
        A new notebook: solution blocks removed, switch off, outputs and
        execution counts cleared.
    n_blocks : int
        Solution blocks removed.
    """
    if not isinstance(notebook, dict) or "cells" not in notebook:
        raise ValueError("notebook must be an nbformat-4 notebook with 'cells'")
    stripped = json.loads(json.dumps(notebook))
    total = 0
    for cell in stripped["cells"]:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        text, n_blocks = strip_source(source)
        total += n_blocks
        cell["source"] = text
        cell["outputs"] = []
        cell["execution_count"] = None
    return stripped, total


def strip_file(path, out_dir):
    """Write the stripped copy of one notebook file into ``out_dir``.

    Parameters
    ----------
    path : str or os.PathLike
        The notebook.
    out_dir : str or os.PathLike
        Folder of the copy (created if missing); it must not be the
        notebook's own folder, so that the original is never overwritten.

    Returns
    -------
    out_path : str
        The copy.
    n_blocks : int
        Solution blocks removed.
    """
    path, out_dir = os.fspath(path), os.fspath(out_dir)
    out_path = os.path.join(out_dir, os.path.basename(path))
    if os.path.realpath(out_path) == os.path.realpath(path):
        raise ValueError(
            f"out_dir {out_dir!r} is the notebook's own folder; choose another, "
            "so that the solutions are not overwritten"
        )
    with open(path, encoding="utf-8") as f:
        notebook = json.load(f)
    stripped, n_blocks = strip_notebook(notebook)
    os.makedirs(out_dir, exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(stripped, f, indent=1, ensure_ascii=False)
        f.write("\n")
    return out_path, n_blocks


def main(argv=None):
    """Run ``python -m rnnrec.exercises strip NOTEBOOK ... --out-dir DIR``.

    Parameters
    ----------
    argv : list of str, optional
        The arguments; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The exit status: 0, or 1 if a notebook held no solution block.
    """
    parser = argparse.ArgumentParser(
        prog="python -m rnnrec.exercises",
        description="Tools for the exercises of the teaching notebooks.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    strip = commands.add_parser(
        "strip", help="write copies of notebooks without the worked solutions"
    )
    strip.add_argument("notebooks", nargs="+", help="notebook files (.ipynb)")
    strip.add_argument("--out-dir", required=True, help="folder of the copies")
    args = parser.parse_args(argv)
    status = 0
    for path in args.notebooks:
        try:
            out_path, n_blocks = strip_file(path, args.out_dir)
        except (ValueError, OSError) as err:
            parser.error(str(err))
        print(f"{out_path}: {n_blocks} solution block(s) removed")
        if n_blocks == 0:
            print(f"warning: {path} holds no 'if SOLUTIONS:' block", file=sys.stderr)
            status = 1
    return status
