#!/usr/bin/env python3
"""Mirrors a source tree into a scratch copy: copies the files whose content
differs (with a fresh mtime, so the build recompiles only what they feed) and
deletes the ones gone from the tree. Skips .git, .cache and every top-level
build*. Used by scripts/mutants and scripts/evidence.

    sync_tree.py SOURCE SCRATCH
"""
import filecmp, os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
def skipped(rel, name):
    return rel == '.' and (name.startswith('build') or name in ('.git', '.cache'))
seen = set()
for root, dirs, files in os.walk(src):
    rel = os.path.relpath(root, src)
    dirs[:] = [d for d in dirs if not skipped(rel, d)]
    os.makedirs(os.path.join(dst, rel), exist_ok=True)
    seen.add(os.path.normpath(rel))
    for name in files:
        if skipped(rel, name):
            continue
        s, d = os.path.join(root, name), os.path.join(dst, rel, name)
        seen.add(os.path.normpath(os.path.join(rel, name)))
        if not os.path.isfile(d) or not filecmp.cmp(s, d, shallow=False):
            if os.path.lexists(d) and not os.path.isfile(d):
                shutil.rmtree(d)
            shutil.copyfile(s, d)
            shutil.copymode(s, d)
for root, dirs, files in os.walk(dst, topdown=False):
    rel = os.path.relpath(root, dst)
    for name in files + dirs:
        p = os.path.normpath(os.path.join(rel, name))
        if p not in seen:
            full = os.path.join(root, name)
            shutil.rmtree(full) if os.path.isdir(full) and not os.path.islink(full) else os.remove(full)
