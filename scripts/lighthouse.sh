#!/usr/bin/env bash
# Lighthouse 12.2.3 (npm, run with npx; the system Chromium, no download) on
# the release page under /three-answers/, serving the test model: prints the
# Accessibility, Best Practices and SEO scores (README, "Browsers"). Not part
# of scripts/test.sh (its scores are a report, not a pass/fail; the axe-core
# audit in tests/e2e/a11y.test.mjs is the test).
#   scripts/build-web.sh /three-answers/ && scripts/lighthouse.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
MODEL="$(scripts/fetch-test-model.sh | tail -n 1)"
SPEC="test/SmolLM2-135M-Instruct-GGUF/$(basename "$MODEL")"
OUT="$ROOT/target/lighthouse"
mkdir -p "$OUT"
python3 scripts/devserver.py --port 0 --dist "$ROOT/dist" --base /three-answers/ --file "$SPEC=$MODEL" >"$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do grep -q '^devserver: http' "$OUT/server.log" && break; sleep 0.1; done
ORIGIN="$(sed -n 's|^devserver: \(http://[^ ]*\)/$|\1|p' "$OUT/server.log" | head -n1)"
URL="$ORIGIN/three-answers/?hub=$ORIGIN/hub&instruct=$SPEC&foundation="
npx -y lighthouse@12.2.3 "$URL" --chrome-path=/usr/bin/chromium --quiet \
  --chrome-flags="--headless=new --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --disable-sync --no-first-run" \
  --only-categories=accessibility,best-practices,seo --output=json --output-path="$OUT/report.json"
python3 - "$OUT/report.json" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
chrome = re.search(r"Chrome/([\d.]+)", r["environment"]["hostUserAgent"])
print("lighthouse", r["lighthouseVersion"], "on Chromium", chrome.group(1) if chrome else "?")
for k, c in r["categories"].items():
    print(f"{c['title']}: {round(c['score'] * 100)}")
    for ref in c["auditRefs"]:
        a = r["audits"][ref["id"]]
        if ref["weight"] > 0 and a["score"] is not None and a["score"] < 1:
            print(f"  not met: {a['id']}: {a['title']}")
PY
