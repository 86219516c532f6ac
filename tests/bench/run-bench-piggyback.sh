#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# usage: run-bench-piggyback.sh SCRIPT TOOLSDIR
[ "$(id -u)" = 0 ] || { echo "skip: needs root (loop devices, cgroups, drop_caches)"; exit 77; }
losetup -f > /dev/null 2>&1 || { echo "skip: no free loop device"; exit 77; }
exec "$1" --quick --size 64M --runs a --check --no-cache --tools "$2"
