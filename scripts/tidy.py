#!/usr/bin/env python3
"""Runs clang-tidy on the given sources, skipping those already found clean.

A source is clean for a key made of clang-tidy's version, the repository's
.clang-tidy, the compile flags and the preprocessed translation unit with
its comments (so NOLINT marks count) and with the checkout's and the build
directory's paths replaced by placeholders. Any change to the file or to a
header it includes changes the key, so a cached "clean" is only ever reused
for exactly the input it was found for. Findings are never cached.

  tidy.py BUILD_DIR CACHE_DIR JOBS FILE...
"""

import concurrent.futures
import hashlib
import json
import os
import shlex
import subprocess
import sys


def load_commands(build):
    with open(os.path.join(build, "compile_commands.json")) as f:
        return {os.path.realpath(e["file"]): e for e in json.load(f)}


def preprocess_args(entry):
    args = shlex.split(entry["command"])
    out = []
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "-o":
            skip = True
            continue
        if a == "-c":
            continue
        out.append(a)
    return out + ["-E", "-C"]


def cache_key(entry, root, build, prefix):
    pre = subprocess.run(preprocess_args(entry), cwd=entry["directory"],
                         capture_output=True, check=True).stdout
    pre = pre.replace(build.encode(), b"@BUILD@").replace(root.encode(),
                                                          b"@ROOT@")
    flags = entry["command"].replace(build, "@BUILD@").replace(root, "@ROOT@")
    h = hashlib.sha256(prefix)
    h.update(flags.encode())
    h.update(b"\0")
    h.update(pre)
    return h.hexdigest()


def check(path, entry, root, build, cache, prefix):
    """Returns (path, ok, output, cached)."""
    key = None
    if entry is not None:
        try:
            key = cache_key(entry, root, build, prefix)
        except subprocess.CalledProcessError:
            key = None  # let clang-tidy report the problem
    marker = os.path.join(cache, key) if key else None
    if marker and os.path.exists(marker):
        return path, True, "", True
    proc = subprocess.run(
        ["clang-tidy", "-p", build, "--quiet", "--warnings-as-errors=*", path],
        cwd=root, capture_output=True, text=True)
    output = "\n".join(
        line for line in (proc.stdout + proc.stderr).splitlines()
        if "warnings generated" not in line and line.strip())
    ok = proc.returncode == 0
    if ok and marker:
        os.makedirs(cache, exist_ok=True)
        with open(marker, "w") as f:
            f.write(path + "\n")
    return path, ok, output, False


def main():
    build, cache, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    files = sys.argv[4:]
    root = os.path.realpath(os.getcwd())
    build = os.path.realpath(build)
    commands = load_commands(build)
    version = subprocess.run(["clang-tidy", "--version"], capture_output=True,
                             check=True).stdout
    with open(os.path.join(root, ".clang-tidy"), "rb") as f:
        prefix = version + b"\0" + f.read() + b"\0"

    failed = 0
    reused = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [
            pool.submit(check, p, commands.get(os.path.realpath(p)), root,
                        build, cache, prefix) for p in files
        ]
        for fut in concurrent.futures.as_completed(futures):
            path, ok, output, cached = fut.result()
            reused += cached
            if output:
                print(output, file=sys.stderr)
            if not ok:
                failed += 1
                print(f"tidy: {path}: findings", file=sys.stderr)
    if failed:
        print(f"tidy: {failed} of {len(files)} files have findings",
              file=sys.stderr)
        return 1
    print(f"tidy: {len(files)} files clean ({reused} unchanged since their "
          "last clean check)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
