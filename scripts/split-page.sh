#!/usr/bin/env bash
# Trunk's post-build hook (Trunk.toml): cuts the page's wasm at its split points (the `#[lazy]` functions
# of frontend/src/deferred.rs) into a first wasm and parts the browser fetches when they are first shown.
#
# Trunk cannot split, so this redoes its last steps from the same cargo artefact (linked with
# `--emit-relocs`, frontend/build.rs): wasm-split-cli (the `wasm_split_cli_support` crate, what
# cargo-leptos uses) writes the first module, the parts and the JavaScript that loads them; wasm-bindgen
# then makes the first module's glue (keeping the exports the parts link against); wasm-opt -Oz shrinks
# every module (Trunk's own pass is off, `data-wasm-opt="0"`). Trunk's glue and wasm are replaced in its
# staging folder and index.html is pointed at the new ones, with their integrity hashes.
#
# Every file written is named after one hash of the artefact, this script and the tools' versions, so a
# name always means the same bytes and the server may let browsers keep them for a year
# (backend/src/web/assets.rs).
set -euo pipefail

stage=${TRUNK_STAGING_DIR:?"run by Trunk as its post_build hook"}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The cargo profile Trunk built with: frontend/index.html's data-cargo-profile-release, or dev.
profile=$([[ ${TRUNK_PROFILE:-release} == release ]] && echo wasm-release || echo debug)
input=${CARGO_TARGET_DIR:-$root/target}/wasm32-unknown-unknown/$profile/frontend.wasm

tools="$(cargo install --list | grep '^wasm_split_cli_support ') $(wasm-bindgen --version) $(wasm-opt --version)"
hash=$({ cat "$input" "${BASH_SOURCE[0]}"; echo "$tools"; } | sha256sum | cut -c1-16)
name=frontend-$hash
link=split-$hash.js

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
wasm-split-cli --target web --out-name "$name" "$input" "$work/split" >/dev/null
wasm-bindgen --target web --keep-lld-exports --no-demangle --out-dir "$work/glue" --out-name "$name" \
    "$work/split/$name.wasm"

features=(--enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext --enable-reference-types
    --enable-multivalue)
optimise() { wasm-opt -Oz "${features[@]}" "$1" -o "$2" 2>/dev/null; }
optimise "$work/glue/${name}_bg.wasm" "$stage/${name}_bg.wasm"
for part in "$work"/split/*.wasm; do
    stem=$(basename "$part" .wasm)
    [[ $stem == "$name" ]] && continue
    optimise "$part" "$stage/$stem-$hash.wasm"
done
# The loader fetches each part by the name given above; the glue imports the loader by its new name (the
# first module still names its imports "./__wasm_split.js", as the glue's import object does).
sed -E "s#\"\./([A-Za-z0-9_]+)\.wasm\"#\"./\1-$hash.wasm\"#g" "$work/split/__wasm_split.js" >"$stage/$link"
sed "s#from \"\./__wasm_split\.js\"#from \"./$link\"#g" "$work/glue/$name.js" >"$stage/$name.js"

integrity() { echo "sha384-$(openssl dgst -sha384 -binary "$1" | base64 -w0)"; }
html=$stage/index.html
old_js=$(cd "$stage" && ls frontend-*.js | grep -vx "$name.js")
old_wasm=$(cd "$stage" && ls frontend-*_bg.wasm | grep -vx "${name}_bg.wasm")
preload_link="<link rel=\"modulepreload\" href=\"/$link\" crossorigin=\"anonymous\" integrity=\"$(integrity "$stage/$link")\">"
sed -i -e "s#$(integrity "$stage/$old_js")#$(integrity "$stage/$name.js")#" \
    -e "s#$(integrity "$stage/$old_wasm")#$(integrity "$stage/${name}_bg.wasm")#" \
    -e "s#/$old_js#/$name.js#g" -e "s#/$old_wasm#/${name}_bg.wasm#g" \
    -e "s#</head>#$preload_link</head>#" "$html"
rm "$stage/$old_js" "$stage/$old_wasm"
echo "split-page: $(ls "$stage"/*-"$hash".wasm | wc -l) wasm files, first $(stat -c%s "$stage/${name}_bg.wasm") bytes"
