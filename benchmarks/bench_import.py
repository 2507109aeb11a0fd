"""Import cost of asteroid_audiosep over asteroid.models, each in fresh interpreters.

Usage: python benchmarks/bench_import.py [--repeats 5]
Goal: < 0.5 s more than `import asteroid.models`, and no laion_clap/open_clip/transformers.
"""
import argparse
import subprocess
import sys


def import_time(module: str) -> float:
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import_time("torch")  # warm the file cache
    base = min(import_time("asteroid.models") for _ in range(args.repeats))
    ours = min(import_time("asteroid_audiosep") for _ in range(args.repeats))
    heavy = subprocess.run(
        [sys.executable, "-c", "import sys, asteroid_audiosep; print([m for m in "
         "('laion_clap', 'open_clip', 'transformers') if m in sys.modules])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    print(f"import asteroid.models     : {base:.3f} s (best of {args.repeats})")
    print(f"import asteroid_audiosep   : {ours:.3f} s (best of {args.repeats})")
    print(f"extra cost                 : {ours - base:+.3f} s (goal < 0.5 s)")
    print(f"heavy modules after import : {heavy}")


if __name__ == "__main__":
    main()
