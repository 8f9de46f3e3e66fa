#!/usr/bin/env bash
# Renders the gateway into a prefix directory for Debian's nginx:
#   deploy/gateway/render.sh PREFIX USER_SVC_UPSTREAM GATEWAY_PORT
# then: nginx -p PREFIX -c PREFIX/nginx.conf
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prefix=$1 upstream=$2 port=$3
mkdir -p "$prefix/conf.d" "$prefix/tmp"
cp "$here/nginx.conf" "$prefix/nginx.conf"
sed -e "s|\${USER_SVC_UPSTREAM}|$upstream|g" -e "s|\${GATEWAY_PORT}|$port|g" \
  "$here/templates/default.conf.template" >"$prefix/conf.d/default.conf"
