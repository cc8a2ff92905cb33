#!/usr/bin/env python3
"""Prints the import graph of src/ between top-level modules, and any cycles.

Each `crate::a::...` path in a file under src/<m>/ (or src/<m>.rs) is an edge
m -> a. Nested modules count as their top-level folder, which is the level
at which docs/architecture.md promises no cycles. Exit status 1 if a cycle
exists. Usage: python3 scripts/module_graph.py [--dot]
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
SKIP = {"main.rs", "lib.rs"}


def top_module(path):
    rel = os.path.relpath(path, ROOT)
    parts = rel.split(os.sep)
    if parts[0] == "cli":
        return None  # the binary's own files, not the library
    if parts[0] == "lab" and len(parts) > 2:
        return "lab::" + parts[1]  # the lab's folders are modules of their own
    if parts[0] == "lab" and len(parts) == 2 and parts[1] != "mod.rs":
        return "lab::" + parts[1][:-3]
    return parts[0][:-3] if len(parts) == 1 else parts[0]


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def edges():
    graph = {}
    for folder, _, files in os.walk(ROOT):
        for name in files:
            if not name.endswith(".rs") or (folder == ROOT and name in SKIP):
                continue
            path = os.path.join(folder, name)
            source = top_module(path)
            if source is None:
                continue
            text = strip_comments(open(path, encoding="utf-8").read())
            # crate::x and grouped imports `use crate::{x, y::z}`
            targets = set(re.findall(r"crate::(lab::[a-z_][a-z0-9_]*|[a-z_][a-z0-9_]*)", text))
            for group in re.findall(r"crate::\{([^}]*)\}", text):
                targets |= set(re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group))
            for group in re.findall(r"crate::lab::\{([^}]*)\}", text):
                targets |= {"lab::" + t for t in re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group)}
            targets.discard("lab")
            if source.startswith("lab::"):
                # super::x inside a lab folder's root file is a sibling
                targets |= {"lab::" + t for t in re.findall(r"super::super::([a-z_][a-z0-9_]*)", text)}
            graph.setdefault(source, set()).update(t for t in targets if t != source)
    return graph


def cycles(graph):
    found, index, low, stack, on, counter = [], {}, {}, [], set(), [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main():
    graph = edges()
    if "--dot" in sys.argv:
        print("digraph src {")
        for source in sorted(graph):
            for target in sorted(graph[source]):
                print(f'  "{source}" -> "{target}";')
        print("}")
    else:
        for source in sorted(graph):
            print(f"{source} -> {', '.join(sorted(graph[source])) or '(nothing)'}")
    found = cycles(graph)
    for component in found:
        print("cycle among: " + ", ".join(component), file=sys.stderr)
    if not found:
        print("no cycles between top-level modules", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
