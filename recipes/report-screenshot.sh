#!/usr/bin/env bash
# The README's picture of an HTML report (docs/images/report.png): `denoise run --html` on the noisy samples, then a
# headless Chromium screenshot of its index. Usage: recipes/report-screenshot.sh WORK   (WORK: a scratch folder)
set -euo pipefail
work=${1:?give a scratch folder}
rm -rf "$work/report" "$work/clean"
denoise run samples/noisy --out "$work/clean" --html "$work/report" -q
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome)
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1000,640 \
  --screenshot="$PWD/docs/images/report.png" "file://$work/report/index.html"
