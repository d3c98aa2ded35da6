#!/bin/bash
# The image's HEALTHCHECK: GET /healthz on the port of LRLAB_BIND, healthy on 200 only.
# bash's /dev/tcp does the HTTP, so the slim image needs no curl.
set -eu
port=${LRLAB_BIND##*:}
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
read -r -t 5 _ status _ <&3
[ "$status" = 200 ]
