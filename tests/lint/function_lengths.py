#!/usr/bin/env python3
"""Lists the C and C++ functions longer than a limit, header to closing brace.

  function_lengths.py [--max 100] [--allow FILE:FUNCTION ...] DIR...

Exits 1 when a function not allowed is longer than --max lines. A function is a brace block
whose header ends in a parameter list (and qualifiers), outside any other function; lambdas and
local classes count towards the function that holds them. Comments and strings are blanked
before the braces are matched.
"""
import argparse
import os
import re
import sys

SOURCES = (".c", ".cc", ".cpp", ".h", ".hpp")
CONTROL = re.compile(r"^\s*(if|for|while|switch|catch|do|else|return|try)\b")
HEADER_END = re.compile(
    r"\)\s*(const|override|final|noexcept|mutable|volatile|&|&&|\s|->\s*[\w:<>,\s\*&]+)*"
    r"(:\s*[^;{}]*)?$", re.S)


def blank(text):
    """Comments, preprocessor lines and string/char literals replaced by spaces (newlines
    kept)."""
    text = re.sub(r"(?m)^[ \t]*#.*$", lambda m: " " * len(m.group(0)), text)
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(path):
    """(name, first line, last line) of every outermost function body in the file."""
    text = blank(open(path, encoding="utf-8", errors="replace").read())
    found, stack = [], []  # stack: (is_function, start_line, name)
    line = 1
    last_stmt = 0  # index after the last ';', '{' or '}'
    for i, c in enumerate(text):
        if c == "\n":
            line += 1
        elif c == "{":
            head = text[last_stmt:i]
            inside_function = any(f for f, _, _ in stack)
            is_function = False
            name = ""
            if not inside_function and HEADER_END.search(head.rstrip()):
                first = head.strip()
                m = re.match(r"[^(]*?([~\w:]+)\s*\(", first, re.S)
                if m and not CONTROL.match(first) and "=" not in first.split("(")[0]:
                    is_function, name = True, m.group(1)
            # The header's first line: where the text before the brace begins.
            stack.append((is_function, line - head.strip().count("\n"), name))
            last_stmt = i + 1
        elif c == "}":
            if stack:
                is_function, start, name = stack.pop()
                if is_function:
                    found.append((name, start, line))
            last_stmt = i + 1
        elif c == ";":
            last_stmt = i + 1
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max", type=int, default=100)
    ap.add_argument("--allow", action="append", default=[],
                    help="FILE:FUNCTION allowed to be longer (file name relative to a DIR)")
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    long_ones = []
    for d in a.dirs:
        for root, _, files in os.walk(d):
            for f in sorted(files):
                if not f.endswith(SOURCES):
                    continue
                path = os.path.join(root, f)
                for name, first, last in functions(path):
                    n = last - first + 1
                    if n > a.max:
                        allowed = any(path.endswith(x.split(":", 1)[0]) and
                                      name.endswith(x.split(":", 1)[1]) for x in a.allow)
                        long_ones.append((n, path, first, name, allowed))
    long_ones.sort(reverse=True)
    bad = 0
    for n, path, first, name, allowed in long_ones:
        print(f"{n:5d} lines  {path}:{first}  {name}{'  (allowed)' if allowed else ''}")
        bad += not allowed
    print(f"{bad} function(s) over {a.max} lines" + (" besides the allowed ones" if long_ones else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
