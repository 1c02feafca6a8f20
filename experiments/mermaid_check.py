"""Parse and render the diagram of every library scenario with a real Mermaid, in chromium.

Usage: python experiments/mermaid_check.py MERMAID_MIN_JS [--chromium PATH]

Mermaid is not a dependency of eosim; fetch it once with npm (``npm install mermaid`` then pass
``node_modules/mermaid/dist/mermaid.min.js``). The diagrams are drawn as ``eosim run`` draws them
(anomalies banded); each must parse and render to SVG. Exits 1 naming the diagrams that do not.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from eosim._diagram import mermaid
from eosim._runner import run_file

LIBRARY = Path(__file__).resolve().parent / "scenarios"

RENDER = """async (text) => {
  try { await mermaid.parse(text); await mermaid.render('d' + (window.n = (window.n || 0) + 1), text); return null; }
  catch (e) { return String(e.message || e); }
}"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mermaid_js", type=Path, help="mermaid.min.js (npm install mermaid)")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium", help="the browser binary")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    bad = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.set_content("<html><body></body></html>")
        page.add_script_tag(path=str(args.mermaid_js))
        page.evaluate("mermaid.initialize({startOnLoad: false})")
        paths = sorted(LIBRARY.glob("*.toml"))
        for path in paths:
            out = run_file(path)
            error = page.evaluate(RENDER, mermaid(out.trace, out.result.to_json()["anomalies"]))
            if error:
                bad.append(path.stem)
                print(f"{path.stem}: {error.splitlines()[0]}", file=sys.stderr)
        browser.close()
    print(f"{len(paths) - len(bad)}/{len(paths)} diagrams parse and render")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
