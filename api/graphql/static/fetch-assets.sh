#!/bin/sh
# Refreshes the GraphiQL page's vendored assets (README.md beside this script) from the npm registry:
# each package packed at the version pinned here, the files the page loads copied as they are, with
# their licences. Run through `make graphiql-assets`; commit what changes.
set -eu

GRAPHIQL=3.8.3
# 3.2.5 is the last release for @graphiql/react 0.28, the version graphiql 3.8.3 bundles.
PLUGIN_EXPLORER=3.2.5
# Bundled inside the explorer plugin's UMD build; packed for its licence only.
GRAPHIQL_EXPLORER=0.9.0
REACT=18.3.1
GRAPHQL_WS=5.16.2

here=$(cd "$(dirname "$0")" && pwd)
assets="$here/assets"
licenses="$here/LICENSES"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

unpack() {
    # $1: package@version, $2: a folder name under $work
    (cd "$work" && npm pack --silent "$1" >/dev/null)
    mkdir -p "$work/$2"
    tar xzf "$work"/*.tgz -C "$work/$2" --strip-components=1
    rm "$work"/*.tgz
}

unpack "graphiql@$GRAPHIQL" graphiql
unpack "@graphiql/plugin-explorer@$PLUGIN_EXPLORER" plugin-explorer
unpack "graphiql-explorer@$GRAPHIQL_EXPLORER" graphiql-explorer
unpack "react@$REACT" react
unpack "react-dom@$REACT" react-dom
unpack "graphql-ws@$GRAPHQL_WS" graphql-ws

mkdir -p "$assets" "$licenses"
cp "$work/graphiql/graphiql.min.js" "$work/graphiql/graphiql.min.css" "$assets/"
cp "$work/plugin-explorer/dist/index.umd.js" "$assets/plugin-explorer.umd.js"
cp "$work/plugin-explorer/dist/style.css" "$assets/plugin-explorer.css"
cp "$work/react/umd/react.production.min.js" "$assets/"
cp "$work/react-dom/umd/react-dom.production.min.js" "$assets/"
cp "$work/graphql-ws/umd/graphql-ws.min.js" "$assets/"

cp "$work/graphiql/LICENSE" "$licenses/graphiql.txt"
# The plugin's package carries no licence file: it is MIT (its package.json), from the same repository
# as graphiql (github.com/graphql/graphiql), whose licence this is.
cp "$work/graphiql/LICENSE" "$licenses/graphiql-plugin-explorer.txt"
cp "$work/graphiql-explorer/LICENSE" "$licenses/graphiql-explorer.txt"
cp "$work/react/LICENSE" "$licenses/react.txt"
cp "$work/react-dom/LICENSE" "$licenses/react-dom.txt"
cp "$work/graphql-ws/LICENSE.md" "$licenses/graphql-ws.txt"

for name in graphiql plugin-explorer graphiql-explorer react react-dom graphql-ws; do
    node -e 'const p = require(process.argv[1]); console.log(`${p.name}@${p.version} (${p.license})`)' \
        "$work/$name/package.json"
done
