#!/usr/bin/env python3
"""Renders the drawings test set from openly licensed emoji artwork (Iconify JSON packages
from npm) to 128×128 PNGs with transparent backgrounds. Run once by hand; the PNGs are
committed, so tests and `trainer evaluate --suite` need neither npm nor librsvg.

    mkdir /tmp/icons && cd /tmp/icons && npm install @iconify-json/openmoji @iconify-json/twemoji \
        @iconify-json/noto @iconify-json/fluent-emoji @iconify-json/fluent-emoji-flat \
        @iconify-json/emojione @iconify-json/fluent-emoji-high-contrast
    apt-get install librsvg2-bin
    python3 tests/ood/drawings/render.py /tmp/icons/node_modules/@iconify-json tests/ood/drawings

The symbol → class mapping is `mapping.tsv` beside this script (why each is there, and
which symbols are skipped, is in README.md).
"""
import json, os, subprocess, sys

src, out = sys.argv[1], sys.argv[2]
mapping = [l.split("\t") for l in open(os.path.join(out, "mapping.tsv")).read().splitlines()[1:] if l.strip()]
sets = ["openmoji", "twemoji", "noto", "fluent-emoji", "fluent-emoji-flat", "fluent-emoji-high-contrast", "emojione"]
os.makedirs(os.path.join(out, "png"), exist_ok=True)
count = 0
for s in sets:
    data = json.load(open(os.path.join(src, s, "icons.json")))
    icons, aliases = data["icons"], data.get("aliases", {})
    for row in mapping:
        symbol, cls = row[0], int(row[1])
        name = symbol
        while name not in icons and name in aliases:
            name = aliases[name]["parent"]
        if name not in icons:
            continue
        icon = icons[name]
        w, h = icon.get("width", data.get("width", 16)), icon.get("height", data.get("height", 16))
        svg = f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="{icon.get("left", 0)} {icon.get("top", 0)} {w} {h}" width="128" height="128">{icon["body"]}</svg>'
        path = os.path.join(out, "png", f"{cls}-{symbol}-{s}.png")
        subprocess.run(["rsvg-convert", "-w", "128", "-h", "128", "-o", path], input=svg.encode(), check=True)
        count += 1
print(f"{count} drawings written to {out}/png")
