#!/bin/bash
# Our check for the os_interaction "calc" items: `calc EXPR` must print EXPR's value within 1e-5.
command -v calc >/dev/null 2>&1 || exit 1
expect() {
  got=$(calc "$1" 2>/dev/null | tail -n 1)
  python3 -c 'import sys; sys.exit(0 if abs(float(sys.argv[1]) - float(sys.argv[2])) < 1e-5 else 1)' "$got" "$2" \
    2>/dev/null || exit 1
}
expect "2 * (9 / 3)" 6
expect "2 * 1" 2
expect "1 + 2 - 3 * 4" -9
expect "(1.5 + 2.5) / 8" 0.5
expect "10 / 4" 2.5
expect "2*(3+(4-1))/3" 4
expect "-(2 - 7) * 1.1" 5.5
exit 0
