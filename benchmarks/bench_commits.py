r"""Time training at several commits side by side: what each change bought.

A speed-up measured today against a figure written down yesterday mixes the
change with the machine's mood. This script checks each commit out into a
temporary git worktree and times the same training run on each, alternating
commit by commit, round after round, so that all of them see the same machine.

Each run is a fresh process of ``bench_threads.py`` (from this checkout, with
``--arrangements pool``) whose ``rnnrec`` is imported from the commit's worktree
(``PYTHONPATH``; the script checks that it was). The first process of a commit
compiles its kernels into the worktree's own Numba cache, untimed; after that
every process loads the cache and warms up before the timed fit. The best round
of each commit is reported with its ratio to the first commit. The worktrees
are removed at the end, also after an error; if the process is killed outright,
``git worktree prune`` forgets the ones it left.

Usage::

    python benchmarks/bench_commits.py 669a48f d178df1 HEAD --rounds 2
    python benchmarks/bench_commits.py 669a48f HEAD --dataset diginetica \
        --config benchmarks/configs/diginetica.json --max-sessions 15000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)  # benchmarks/ is a folder of scripts: import a sibling
import bench_train  # noqa: E402

DEFAULT_OUT = os.path.join(HERE, "results", "bench_commits.json")


def git(*args):
    """Run git in this checkout; return its output, stripped."""
    done = subprocess.run(
        ["git", "-C", ROOT, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def time_fit(tree, options, scratch):
    """One timed fit of ``bench_threads.py`` on the rnnrec in ``tree``.

    Returns the row that ``bench_threads.py`` wrote (events per second, seconds
    and loss of its one round).
    """
    out = os.path.join(scratch, "run.json")
    probe = "import rnnrec, sys; sys.stdout.write(rnnrec.__file__)"
    env = dict(os.environ, PYTHONPATH=tree)
    where = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=scratch,
        capture_output=True,
        text=True,
    ).stdout
    if not where.startswith(tree):
        raise SystemExit(f"rnnrec was imported from {where!r}, not from {tree}")
    command = [sys.executable, os.path.join(HERE, "bench_threads.py"), *options]
    command += ["--arrangements", "pool", "--rounds", "1", "--out", out]
    done = subprocess.run(command, env=env, cwd=scratch, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench_threads.py failed in {tree}:\n{done.stderr}")
    with open(out, encoding="utf-8") as f:
        result = json.load(f)
    return result["rows"][0], result["machine"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commits", nargs="+", help="commits to compare, oldest first")
    bench_threads = bench_train.load_sibling("bench_threads")
    bench_threads.add_fit_arguments(parser)
    parser.add_argument(
        "--out",
        nargs="?",
        const=DEFAULT_OUT,
        help=f"write JSON (to {os.path.relpath(DEFAULT_OUT, ROOT)} if no path)",
    )
    args = parser.parse_args(argv)
    bench_threads.check_fit_arguments(parser, args)
    if not os.path.isfile(args.config):
        parser.error(f"--config: no such file {args.config}")

    commits = []
    for name in args.commits:
        sha = git("rev-parse", "--verify", f"{name}^{{commit}}")
        commits.append({"sha": sha, "subject": git("log", "-1", "--format=%s", sha)})
    options = ["--dataset", args.dataset, "--data-dir", os.path.abspath(args.data_dir)]
    options += ["--config", os.path.abspath(args.config)]
    options += ["--threads", str(args.threads)]
    options += ["--max-sessions", str(args.max_sessions)]

    rows, machine = [], None
    with tempfile.TemporaryDirectory(prefix="rnnrec-commits-") as scratch:
        trees = {}
        try:
            for c in commits:
                tree = os.path.join(scratch, c["sha"][:12])
                git("worktree", "add", "--detach", tree, c["sha"])
                trees[c["sha"]] = tree
                time_fit(tree, options, scratch)  # compiles into the tree's cache
                print(f"  ready {c['sha'][:7]} {c['subject'][:60]}", flush=True)
            for r in range(args.rounds):
                order = commits if r % 2 == 0 else commits[::-1]
                for c in order:
                    row, machine = time_fit(trees[c["sha"]], options, scratch)
                    rows.append({"commit": c["sha"], "round": r, **row})
                    print(
                        f"  round {r} {c['sha'][:7]} "
                        f"{row['events_per_second']:8,.0f} events/s "
                        f"loss {row['loss']:.4f}",
                        flush=True,
                    )
        finally:
            for tree in trees.values():
                git("worktree", "remove", "--force", tree)

    result = {
        "kind": "commits",
        "machine": machine,
        "command": " ".join(["python", *sys.argv]) if argv is None else None,
        "settings": {
            "dataset": args.dataset,
            "config": os.path.basename(args.config),
            "threads": args.threads,
            "max_sessions": args.max_sessions,
            "rounds": args.rounds,
        },
        "commits": commits,
        "rows": rows,
    }
    print(bench_train.load_sibling("report").commits_table(result))
    if args.out:
        bench_train.write_result(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
