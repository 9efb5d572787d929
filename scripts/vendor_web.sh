#!/usr/bin/env bash
# Fetch the web page's vendored scripts from npm again, verify the tarballs' checksums, and copy
# the files into indexer/web/static/vendor (see its README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=indexer/web/static/vendor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fetch() {  # package version sha256 file-in-package target
  (cd "$tmp" && npm pack --silent "$1@$2" >/dev/null)
  echo "$3  $tmp/$1-$2.tgz" | sha256sum -c --quiet
  mkdir -p "$tmp/$1" && tar xzf "$tmp/$1-$2.tgz" -C "$tmp/$1"
  cp "$tmp/$1/package/$4" "$dest/$5"
  cp "$tmp/$1/package/LICENSE" "$dest/$1.LICENSE"
}
fetch d3 7.9.2 f0c1d2c2479907a6e3265370d0fd715f7aef0f561cdd2b415df385ba7df9d1aa dist/d3.min.js d3.min.js
# /docs: Swagger UI served from here, not from a CDN (the API docs work with no network)
SWAGGER=3c30bfe83d09763d14b4c88df0beade8ca162087a2fa5db3f34472f231ab3ba9
fetch swagger-ui-dist 5.32.0 $SWAGGER swagger-ui-bundle.js swagger-ui-bundle.js
fetch swagger-ui-dist 5.32.0 $SWAGGER swagger-ui.css swagger-ui.css
echo "vendored into $dest"
