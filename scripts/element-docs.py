#!/usr/bin/env python3
"""The property tables of docs/elements.md, made from the elements themselves.

Each element's table sits between the lines `<!-- properties: ELEMENT -->` and
`<!-- /properties -->` and lists what gst-inspect-1.0 shows of the properties the element's own
classes install (inherited GstObject and GstBaseTransform properties are left out): name, type,
default, range or values, when it may be changed, and the blurb. They are read through GObject
introspection (PyGObject) rather than parsed from gst-inspect-1.0's text, whose layout differs
between GStreamer 1.22 and 1.26; the values are the same.

  element-docs.py --plugin-dir build/gst-plugins --write docs/elements.md
  element-docs.py --plugin-dir build/gst-plugins --check docs/elements.md

--check exits 1 naming each table that differs from the built elements.
"""
import argparse
import os
import re
import sys
import tempfile

START = re.compile(r"^<!-- properties: ([a-z]+) -->$")
END = "<!-- /properties -->"


def gst_init(plugin_dir):
    os.environ["GST_PLUGIN_PATH"] = plugin_dir
    os.environ["GST_REGISTRY_FORK"] = "no"
    registry = tempfile.NamedTemporaryFile(prefix="vidcls-docs-registry-", suffix=".bin",
                                           delete=False)
    registry.close()
    os.environ["GST_REGISTRY"] = registry.name
    import gi
    gi.require_version("Gst", "1.0")
    from gi.repository import GObject, Gst
    Gst.init(None)
    return GObject, Gst, registry.name


def enum_members(GObject, pspec):
    """(value, nick) of each value of an enum property's type. Before PyGObject 3.50 (Debian 12)
    pspec.enum_class is a Python class that lists its values and the default is one of them; from
    3.50 (Debian 13) it is the GEnumClass and the default a plain int."""
    ec = pspec.enum_class
    values = getattr(ec, "__enum_values__", None)
    if values is not None:
        return [(int(v), m.value_nick) for v, m in sorted(values.items())]
    members = []
    for v in range(ec.minimum, ec.maximum + 1):
        m = GObject.enum_get_value(ec, v)
        if m is not None:
            members.append((v, m.value_nick))
    return members


def value_text(GObject, pspec, value):
    if value is None:
        return "(none)"
    if GObject.type_is_a(pspec.value_type, GObject.TYPE_ENUM):
        return dict(enum_members(GObject, pspec))[int(value)]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return f'"{value}"' if value else '""'
    return str(value)


def range_text(GObject, pspec):
    t = pspec.value_type
    if GObject.type_is_a(t, GObject.TYPE_ENUM):
        return ", ".join(nick for _, nick in enum_members(GObject, pspec))
    if hasattr(pspec, "minimum") and hasattr(pspec, "maximum"):
        lo, hi = pspec.minimum, pspec.maximum
        fmt = (lambda x: f"{x:g}") if isinstance(lo, float) else str
        return f"{fmt(lo)} – {fmt(hi)}"
    return ""


def type_text(GObject, pspec):
    name = GObject.type_name(pspec.value_type)
    return {"gchararray": "string", "gboolean": "boolean", "guint": "uint", "gint": "int",
            "guint64": "uint64", "gint64": "int64", "gdouble": "double", "gfloat": "float",
            "GstStructure": "GstStructure"}.get(name, name)


def flags_text(GObject, Gst, pspec):
    if not pspec.flags & GObject.ParamFlags.WRITABLE:
        return "read-only"
    if pspec.flags & Gst.PARAM_MUTABLE_PLAYING:
        return "any time"
    if pspec.flags & Gst.PARAM_MUTABLE_PAUSED:
        return "up to PAUSED"
    if pspec.flags & Gst.PARAM_MUTABLE_READY:
        return "in NULL or READY"
    return ""


def own_types(GObject, element_type):
    """The element's type and its ancestors that vidcls defines."""
    types, t = [], element_type
    while t and t != GObject.TYPE_INVALID:
        name = GObject.type_name(t)
        if not re.match(r"Gst(Vidcls|Vivid|ResnetVit)", name):
            break
        types.append(t)
        t = GObject.type_parent(t)
    return types


def table(GObject, Gst, name):
    factory = Gst.ElementFactory.find(name)
    if factory is None:
        raise SystemExit(f"element-docs: no element {name} in the plugin folder")
    element = factory.create(None)
    owners = own_types(GObject, element.__gtype__)
    rows = ["| Property | Type | Default | Range / values | Changeable | Description |",
            "| --- | --- | --- | --- | --- | --- |"]
    for pspec in sorted(element.list_properties(), key=lambda p: p.name):
        if pspec.owner_type not in owners:
            continue
        default = ("" if not pspec.flags & GObject.ParamFlags.WRITABLE
                   else value_text(GObject, pspec, pspec.default_value))
        writable = pspec.flags & GObject.ParamFlags.WRITABLE
        blurb = pspec.blurb.replace("|", "\\|")
        rows.append(f"| `{pspec.name}` | {type_text(GObject, pspec)} | {default} | "
                    f"{range_text(GObject, pspec) if writable else ''} | "
                    f"{flags_text(GObject, Gst, pspec)} | {blurb} |")
    return "\n".join(rows)


def render(text, GObject, Gst):
    out, lines, i, names = [], text.split("\n"), 0, []
    while i < len(lines):
        out.append(lines[i])
        m = START.match(lines[i])
        i += 1
        if not m:
            continue
        names.append(m.group(1))
        while i < len(lines) and lines[i] != END:
            i += 1
        if i == len(lines):
            raise SystemExit(f"element-docs: {m.group(1)}: no {END} after the table")
        out.append(table(GObject, Gst, m.group(1)))
        out.append(END)
        i += 1
    return "\n".join(out), names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plugin-dir", required=True)
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", metavar="MD")
    mode.add_argument("--check", metavar="MD")
    args = ap.parse_args()
    GObject, Gst, registry = gst_init(args.plugin_dir)
    try:
        path = args.write or args.check
        with open(path) as f:
            text = f.read()
        made, names = render(text, GObject, Gst)
        if not names:
            raise SystemExit(f"element-docs: {path} has no <!-- properties: ELEMENT --> table")
        if args.write:
            with open(path, "w") as f:
                f.write(made)
            print(f"element-docs: wrote {len(names)} tables ({', '.join(names)}) into {path}")
            return 0
        if made == text:
            print(f"element-docs: {path} matches the elements ({', '.join(names)})")
            return 0
        old, new = text.split("\n"), made.split("\n")
        for n in names:
            def block(lines):
                s = lines.index(f"<!-- properties: {n} -->")
                return lines[s:lines.index(END, s)]
            if block(old) != block(new):
                print(f"element-docs: the {n} table in {path} differs from the built element",
                      file=sys.stderr)
        print(f"element-docs: run scripts/element-docs.py --plugin-dir BUILD/gst-plugins --write "
              f"{path}", file=sys.stderr)
        return 1
    finally:
        os.unlink(registry)


if __name__ == "__main__":
    sys.exit(main())
